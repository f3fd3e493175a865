# Verbs of the project; each is a small script under scripts/.
, := ,
.PHONY: help setup up down logs deploy demo test lint clean reprocess-all bench-localcloud bench-resize bench-formats bench-renditions bench-load cost bench-memory bench-auth scan

help:
	@echo "make setup  - create the environments under .venv/ (done by every verb that needs them)"
	@echo "make demo   - everything: local cloud up, stack deployed, a real upload -> resize -> download"
	@echo "make deploy - sam build + package, then a CloudFormation change set to the local cloud"
	@echo "make up     - start the local cloud (LocalStack host mode) on localhost:4566"
	@echo "make down   - stop it and every Lambda process it started"
	@echo "make logs   - show the local cloud's log"
	@echo "make test   - run the whole test suite (starts and stops what it needs)"
	@echo "make lint   - ruff and mypy (make test runs mypy too)"
	@echo "make reprocess-all [STACK=name] - re-render every image made with other RenditionSizes/RenditionFormats"
	@echo "make scan   - checkov policy scan of template.yaml (fails on any finding; make test runs it too)"
	@echo "make bench-resize [IMAGES=dir] [JSON=out.json] - image engine vs libvips vs naive Pillow"
	@echo "make bench-renditions [IMAGES=dir] [JSON=out.json] - the whole rendition set per input class; encoder settings"
	@echo "make bench-formats - HEIC/AVIF vs JPEG of the same picture, and real phone files, through the engine"
	@echo "make bench-load [N=300] [RENDITIONS=one] [SINGLE=n] [FOCUS=n] - N uploads in a burst: throughput, latency, CPU per image; FOCUS: a focal point's crops against a reprocess"
	@echo "make bench-localcloud - Lambda/Step Functions latency benchmark (starts the local cloud)"
	@echo "make cost [N=10] [JSON=out.json] - what one image costs on AWS: counted on the local cloud, priced (docs/cost.md)"
	@echo "make bench-memory [N=6] [SIZES=..] - each function's duration and cost per memory size, with Lambda's CPU share"
	@echo "make bench-auth [ROUNDS=5] [CALLS=400] - what verifying the bearer token adds to a warm API call"

setup:
	@bash scripts/setup.sh

up:
	@bash scripts/up.sh

deploy:
	@bash scripts/deploy_local.sh

demo:
	@bash scripts/demo.sh

down:
	@bash scripts/down.sh

logs:
	@bash scripts/logs.sh

test:
	@bash scripts/test.sh

lint: setup
	@.venv/dev/bin/ruff check .
	@bash scripts/typecheck.sh

clean: down
	rm -rf .localcloud .aws-sam

bench-localcloud: up
	@bash scripts/bench_localcloud.sh

bench-resize: setup
	@PYTHONPATH=layers/shared:. .venv/dev/bin/python bench/resize_bench.py $(if $(IMAGES),--images $(IMAGES)) --json $(or $(JSON),bench/out/resize.json)

reprocess-all: setup
	@bash -c 'source scripts/lib.sh && export_client_env && .venv/dev/bin/python scripts/reprocess_all.py --stack $(or $(STACK),image-pipeline)'

bench-renditions: setup
	@PYTHONPATH=layers/shared:. .venv/dev/bin/python bench/renditions_bench.py $(if $(IMAGES),--images $(IMAGES)) --json $(or $(JSON),bench/out/renditions.json)

bench-auth: setup
	@PYTHONPATH=bench .venv/dev/bin/python bench/auth_bench.py --rounds $(or $(ROUNDS),5) --calls $(or $(CALLS),400) --json $(or $(JSON),bench/out/auth.json)

bench-formats: setup
	@PYTHONPATH=layers/shared:. .venv/dev/bin/python bench/formats_bench.py --json $(or $(JSON),bench/out/formats.json)

# RENDITIONS=one deploys the one-size, one-format configuration (an 800-px JPEG); SINGLE=n: n uploads one at a time
bench-load: setup
	@bash scripts/deploy_local.sh image-pipeline $(if $(filter one,$(RENDITIONS)),RenditionSizes=800 RenditionFormats=jpeg,RenditionSizes=200$(,)400$(,)800$(,)1600 RenditionFormats=avif$(,)webp$(,)jpeg) RenditionProfiles=$(if $(FOCUS),square:400x400:attention$(,)card:1200x630:attention) WorkflowType=STANDARD >/dev/null
	@bash -c 'source scripts/lib.sh && export_client_env && .venv/dev/bin/python bench/load.py $(if $(FOCUS),--focus $(FOCUS),$(if $(SINGLE),--single $(SINGLE),--uploads $(or $(N),300))) --json bench/out/load.json'

# deploys the one-size, one-format configuration and the default set, as Standard and Express, in turn; leaves the
# template's defaults deployed
# Restarts the local cloud with Lambda's CPU share by memory (durations as Lambda's sizes give them), stops it after.
cost: setup
	@bash scripts/down.sh >/dev/null 2>&1 || true
	@LOCALCLOUD_CPU_BY_MEMORY=1 bash scripts/up.sh
	@bash -c 'source scripts/lib.sh && export_client_env && .venv/dev/bin/python bench/cost.py --uploads $(or $(N),10) --json $(or $(JSON),bench/out/cost.json)'; status=$$?; bash scripts/down.sh >/dev/null 2>&1; exit $$status

# Restarts the local cloud with Lambda's CPU share by memory (LOCALCLOUD_CPU_BY_MEMORY=1), and stops it after.
bench-memory: setup
	@bash scripts/down.sh >/dev/null 2>&1 || true
	@LOCALCLOUD_CPU_BY_MEMORY=1 bash scripts/up.sh
	@bash -c 'source scripts/lib.sh && export_client_env && .venv/dev/bin/python bench/memory.py --uploads $(or $(N),6) $(if $(SIZES),--sizes $(SIZES)) --json $(or $(JSON),bench/out/memory.json)'; status=$$?; bash scripts/down.sh >/dev/null 2>&1; exit $$status

scan:
	@bash scripts/scan.sh
