#!/usr/bin/env bash
# Usage: scripts/demo.sh — the main job, end to end: local cloud up, stack deployed, a demo user made and signed in,
# then a real upload -> resize -> download of a sample photo through the HTTP API, with curl, as a client would.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export_client_env
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

bash "$ROOT/scripts/deploy_local.sh"
API="$(json "['LocalApiUrl']" < "$STATE_DIR/stack-image-pipeline.json")"
demo="$STATE_DIR/demo"; mkdir -p "$demo"
"$VENV_DIR/dev/bin/python" "$ROOT/scripts/sample_image.py" "$demo/photo.jpg"
size=$(stat -c %s "$demo/photo.jpg")
imgpipe() { "$VENV_DIR/dev/bin/imgpipe" "$@"; }
echo
# The demo user's password: made once per local cloud folder, kept beside its state (mode 0600)
secret="$demo/password"
[ -s "$secret" ] || (umask 077 && "$VENV_DIR/dev/bin/python" -c 'import secrets; print("Demo-" + secrets.token_urlsafe(12) + "-7a")' >"$secret")
log "0. a user (an operator's command) and a sign-in: imgpipe users add demo; imgpipe login demo"
imgpipe users add demo --update --password-stdin <"$secret" >/dev/null
imgpipe login demo --password-stdin <"$secret"
TOKEN="$(imgpipe token)"
auth=(-H "Authorization: Bearer $TOKEN")
log "1. ask for an upload URL: POST $API/upload (Authorization: Bearer \$(imgpipe token))"
resp="$(curl -sS -X POST "$API/upload" "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"filename\": \"photo.jpg\", \"contentType\": \"image/jpeg\", \"size\": $size}")"
echo "$resp" | python3 -m json.tool | sed 's/\(X-Amz-Signature=\)[0-9a-f]*/\1…/' | cut -c1-160
id="$(echo "$resp" | json "['imageId']")"
url="$(echo "$resp" | json "['uploadUrl']")"

log "2. upload the photo straight to S3, once: curl -X PUT -T photo.jpg \"\$uploadUrl\" (4000x3000 upright, stored sideways + EXIF/GPS)"
code="$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -T "$demo/photo.jpg" -H 'Content-Type: image/jpeg' -H 'If-None-Match: *' "$url")"
[ "$code" = 200 ] || die "upload failed with HTTP $code"
echo "HTTP $code, $size bytes"

log "3. wait for the workflow: GET $API/images/$id"
for _ in $(seq 1 120); do
  status="$(curl -sS "${auth[@]}" "$API/images/$id" | json "['status']")"
  case "$status" in PROCESSED|REJECTED|FAILED) break;; esac
  sleep 0.5
done
curl -sS "${auth[@]}" "$API/images/$id" | python3 -m json.tool
[ "$status" = PROCESSED ] || die "the image ended $status"

log "4. download the rendition: GET $API/download?imageId=$id"
dl="$(curl -sS "${auth[@]}" "$API/download?imageId=$id")"
curl -sS -o "$demo/photo-rendition.jpg" "$(echo "$dl" | json "['downloadUrl']")"
"$VENV_DIR/dev/bin/python" - "$demo/photo-rendition.jpg" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1])
print(f"{sys.argv[1]}: {im.format} {im.width}x{im.height}, EXIF tags: {len(im.getexif())}, "
      f"red corner now at top-right: {im.getpixel((im.width - 5, 5))[0] > 200}")
PY

log "5. the responsive set: GET $API/download?imageId=$id&size=400&format=auto, as a browser asks (Accept: image/avif,…)"
dl="$(curl -sS "${auth[@]}" -H 'Accept: image/avif,image/webp,image/*,*/*;q=0.8' "$API/download?imageId=$id&size=400&format=auto")"
echo "$dl" | python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"{d['format']} {d['width']}x{d['height']}, {d['bytes']} bytes\")"
curl -sS -o "$demo/photo-400.avif" "$(echo "$dl" | json "['downloadUrl']")"
curl -sS "${auth[@]}" "$API/images/$id" | python3 -c "
import json, sys
d = json.load(sys.stdin)
for r in d['renditions']:
    print(f\"  {r['size']:>5} {r['format']:<5} {r['width']}x{r['height']:<5} {r['bytes']:>8} bytes\")
print('  placeholder:', d['placeholder'])"

log "6. the execution that did it: imgpipe trace $id"
COLUMNS=120 imgpipe trace "$id"
echo
key="$(curl -sS "${auth[@]}" "$API/images/$id" | json "['processed']['key']")"
echo "Done. Rendition: $demo/photo-rendition.jpg (s3://$(json "['ProcessedBucketName']" < "$STATE_DIR/stack-image-pipeline.json")/$key), 400-px AVIF: $demo/photo-400.avif"
web="$(json "['LocalWebUrl']" < "$STATE_DIR/stack-image-pipeline.json")"
echo "The web page: $web (sign in as demo, password in $secret)"
echo "From a terminal: export PATH=\"\$PWD/.venv/dev/bin:\$PATH\"; imgpipe upload <folder> --wait; imgpipe ls; imgpipe --help"
echo "The local cloud keeps running: 'make down' stops it."
