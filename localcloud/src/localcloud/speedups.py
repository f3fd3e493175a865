"""Start-up hooks that remove per-state costs from LocalStack 2026.3.0's Step Functions engine.

Measured on these 2-core machines (bench/localcloud_bench.py), a Lambda task took ~70 ms against a
~12 ms direct invoke, because for every state LocalStack
- assumes the state machine's role (an internal STS call) and builds a new botocore client for the
  fresh credentials; AWS reuses a role session for its lifetime, we reuse the assumed-role client
  factory for 10 minutes per (role, principal, region, config);
- parses every JSONPath (InputPath, OutputPath, ResultPath, ...) with jsonpath_ng, which makes a new ply parser,
  LALR tables and all, for each parse (~17 ms); parsed expressions are not changed by finding matches, so each
  path is parsed once, by one parser, while executions that need it at the same moment wait for that parse;
- parses the whole ASL definition with ANTLR (pure Python) at every execution start: ~53 ms for this
  project's state machine, then ~10 ms to turn the parse tree into evaluation components. The parse tree
  is only read by that step, so we keep it per definition, with the text of each of its nodes (that step formats
  the whole program's text into two error messages it rarely raises); and the components, which keep nothing of an
  execution, are built once per definition and shared by its executions, unless it has Map or Parallel states (these
  are still built for every execution: they run workers of their own);
- turns the service's operation names and the task's parameter names from CamelCase to snake_case at every service
  task: once per name;
- puts two "Step Functions Execution Status Change" events per execution on the default event bus, through a client,
  the gateway and a new thread each; we send them only if a rule on that bus may match them (nothing else would see
  them);
- sends each invocation's logs with its own PutLogEvents call (~3.5 ms through the internal client) from one
  thread per function version; under a burst the invocations' logs wait in that thread's queue, and we send
  what is waiting together, one call per log stream. Once a stream exists, a batch goes straight into the logs
  store (moto's backend, what LocalStack's PutLogEvents ends in), not through a botocore request, the gateway and
  moto's HTTP dispatch: that path was ~16% of LocalStack's CPU in a burst (py-spy, 2026-12-03). The first batch
  of a stream, and every batch while CloudWatch metric filters apply (LocalStack evaluates those in its provider),
  still go through the client.
- builds a request parser per service model once, but a burst's first requests of a service each built one (~30
  ms) before the first was kept; one is made while the others wait;
- makes a new boto3 client for each Lambda code URL it signs (GetFunction), ~30-50 ms each; one client per endpoint
  signs them all.
And costs of moto, which serves DynamoDB and the logs:
- an UpdateItem tokenises its UpdateExpression character by character in pure Python and parses it, twice (once to
  check the request, once to apply it), lexes its ConditionExpression, deep-copies the parsed tree for ten validators
  whose walks rebuild a map at every node and test ABCs with ``isinstance``: one tree per expression (so each is
  tokenised once), copied from its pickle, conditions lexed once, the walks without ABC checks (~35% less LocalStack
  CPU per UpdateItem, measured side by side; the tokenising alone was ~8% of LocalStack's CPU in a burst);
- moto lists the methods of a service's response class with ``inspect.getmembers`` on every request, to find the
  action's handler; the class does not change while LocalStack runs, so the list is made once per class.
- DescribeLogGroups deep-copied every log group with all its events (and each group's streams once more) to read
  names and sizes: its cost grew with every log line kept (~0.6 s after 35,000 events); it now reads snapshots.
- each service's valid regions were computed from a new boto3 Session, which reads botocore's endpoints.json again
  (~1.2 s of CPU per LocalStack process); one session serves them all.
- Lambda code given as an S3 object was read and uploaded again, in parts, into LocalStack's own bucket (the
  project's 44 MB layer at every stack deploy); it is copied within S3.
And one of start-up: the Step Functions engine's import of ``moto.batch.utils`` ran moto.batch's __init__, which
loads moto's Batch and EC2 backends (~45% of LocalStack's start-up CPU, ~80 MB); that body now runs only if something
uses the package itself (localcloud.lazy).
Each hook is skipped, with a log line, if LocalStack's internals are not what it expects. One more hook installs
the garbage collection policy of a long-running local cloud (localcloud.gcpolicy) and its counters at /_localcloud/gc;
another keeps LocalStack's list of started threads from growing with every execution (localcloud.threadlist), its
counts at /_localcloud/threads.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Hashable

from localstack.http import Request, Response, route

from localcloud.patching import Unexpected, hook, patch, rebind_imported

LOG = logging.getLogger(__name__)
SESSION_REUSE_S = 600
CLOSE_HANDLER_ID = "localcloud-connection-close"
LOG_BATCH_ITEMS = 50


def _close_after_response(request, **kwargs) -> None:
    request.headers["Connection"] = "close"


class MadeOnce:
    """Values made once per key (for ``ttl`` seconds, if given), for any thread. A miss makes the value while the others
    that miss wait for it: the first Tasks of a burst all miss at once, and each made its own session and clients
    (~50 ms each, and LocalStack keeps a request parser per client's service model for good): ~1 s of LocalStack's CPU
    at the start of a burst on a fresh local cloud (py-spy, 2026-12-03). With ``size``, at most that many are kept (the
    oldest goes). A ``make`` that raises keeps nothing."""

    def __init__(self, ttl: float | None = None, size: int | None = None) -> None:
        self.ttl = ttl
        self.size = size
        self._values: dict[Hashable, tuple[object, float]] = {}
        self._lock = threading.Lock()
        self._making = threading.Lock()  # one value made at a time

    def get(self, key: Hashable, make):
        value = self._kept(key)
        if value is not None:
            return value
        with self._making:
            value = self._kept(key)
            if value is None:
                value = make()
                expires = time.monotonic() + self.ttl if self.ttl is not None else float("inf")
                with self._lock:
                    if self.size is not None and len(self._values) >= self.size:
                        self._values.pop(next(iter(self._values)))
                    self._values[key] = (value, expires)
        return value

    def __len__(self) -> int:
        return len(self._values)

    def _kept(self, key: Hashable):
        with self._lock:
            kept = self._values.get(key)
        return kept[0] if kept is not None and kept[1] > time.monotonic() else None


class FreshConnections:
    """A client factory whose clients are made once per (service, arguments) and open a new connection per request.

    Reused clients would otherwise keep pooled keep-alive connections that the gateway closes when idle;
    LocalStack configures these clients with no retries, so a connection closed as it is reused would fail
    the task (States.Runtime). A loopback connection costs ~0.3 ms; a client costs ~50 ms. (With
    ``IN_MEMORY_CLIENT`` there is no connection at all and the header does nothing.)

    The clients of one factory share one event emitter: the handler is registered under a unique id, once. (It was
    registered once per client made, so every Task added a handler and a ``Connection`` header to every later
    request of every Task: after a few thousand Tasks, building a request took most of LocalStack's CPU.)
    """

    def __init__(self, factory) -> None:
        self._factory = factory
        self._clients = MadeOnce()

    def get_client(self, *args, **kwargs):
        def make():
            client = self._factory.get_client(*args, **kwargs)
            client.meta.events.register("request-created", _close_after_response, unique_id=CLOSE_HANDLER_ID)
            return client

        return self._clients.get((args, tuple(sorted(kwargs.items()))), make)

    def __getattr__(self, name: str):
        return getattr(self._factory, name)


class CachedAssumedRoles:
    """Proxy of localstack.aws.connect.connect_to whose with_assumed_role() reuses recent sessions."""

    def __init__(self, factory) -> None:
        self._factory = factory
        self._sessions = MadeOnce(ttl=SESSION_REUSE_S)

    def with_assumed_role(self, *, role_arn: str, service_principal=None, region_name=None, config=None, **kwargs):
        def make():
            return FreshConnections(
                self._factory.with_assumed_role(
                    role_arn=role_arn,
                    service_principal=service_principal,
                    region_name=region_name,
                    config=config,
                    **kwargs,
                )
            )

        key = (role_arn, service_principal, region_name, id(config), tuple(sorted(kwargs.items())))
        return self._sessions.get(key, make)

    def __getattr__(self, name: str):
        return getattr(self._factory, name)

    def __call__(self, *args, **kwargs):
        return self._factory(*args, **kwargs)


@hook("Step Functions client cache")
def cache_stepfunctions_task_clients() -> str | None:
    from localstack.services.stepfunctions.asl.utils import boto_client

    if not patch(boto_client, "connect_to", CachedAssumedRoles, wraps=True):
        return None
    return "Step Functions task clients are cached per role session"


class ParsedOnce:
    """JSONPath expressions parsed once per path string, by one parser made once.

    jsonpath_ng's ``parse`` makes a new parser for every path, and ply builds the parser's LALR tables each time
    (~17 ms; a parse with a made parser ~0.5 ms). A burst's first executions all miss at once: each would parse the
    definition's ~40 paths, each with a new parser. Here one thread parses a missing path (MadeOnce: one at a time,
    as the ply parser is not reentrant), and the others wait for it. The expressions are shared: finding matches does not
    change them. A path that does not parse raises, as before, and is not kept."""

    def __init__(self, make_parser, size: int = 4096) -> None:
        self._make_parser = make_parser
        self._parser = None
        self._parsed = MadeOnce(size=size)  # makes one at a time: the parser is used by one thread at once
        self.parses = 0  # paths parsed (a test reads it)

    def parse(self, path: str):
        return self._parsed.get(path, lambda: self._parse(path))

    def _parse(self, path: str):
        if self._parser is None:
            self._parser = self._make_parser()
        parsed = self._parser.parse(path)
        self.parses += 1
        return parsed


@hook("Step Functions JSONPath cache")
def cache_stepfunctions_jsonpath_parsing() -> str | None:
    import jsonpath_ng
    import jsonpath_ng.ext
    from jsonpath_ng.ext.parser import ExtentedJsonPathParser
    from jsonpath_ng.parser import JsonPathParser
    from localstack.services.stepfunctions.asl.component.common.path import result_path
    from localstack.services.stepfunctions.asl.utils import json_path

    parsers = {jsonpath_ng.ext.parse: ExtentedJsonPathParser, jsonpath_ng.parse: JsonPathParser}

    def parsed_once(parse):
        if parse not in parsers:
            raise Unexpected(f"{parse!r} is not jsonpath_ng's parse")
        paths = ParsedOnce(parsers[parse])

        def parse_once(path: str):  # a function: patch marks it, which a bound method would not allow
            return paths.parse(path)

        return parse_once

    patched = [patch(module, "parse", parsed_once, wraps=True) for module in (json_path, result_path)]
    return "Step Functions JSONPaths are parsed once each, by one parser" if any(patched) else None


def parsers_made_once(create):
    """``create(service, protocol)`` made once per (service model, protocol), one at a time; concurrent callers wait."""
    parsers = MadeOnce()

    def create_parser(service, protocol=None):
        return parsers.get((service, protocol), lambda: create(service, protocol))

    return create_parser


@hook("request parsers made once")
def make_request_parsers_once() -> str | None:
    """LocalStack keeps one request parser per service model (``functools.cache``), but a burst's first requests of a
    service all miss together, and each built a parser (its werkzeug URL map of every operation: ~30 ms) before the
    first was kept: ~1.4 s of LocalStack's CPU at the start of a burst on a fresh local cloud (py-spy, 2026-12-04).
    One is made; the others wait for it."""
    from localstack.aws.protocol import parser

    original = parser.create_parser
    if not patch(parser, "create_parser", parsers_made_once, wraps=True):
        return None
    rebind_imported("create_parser", original, parser.create_parser)
    return "request parsers are made once per service model"


def rule_texts(tree) -> dict[int, str]:
    """id -> getText() of every rule node of a parse tree, made in one walk (ANTLR's getText walks a node's whole
    subtree at each call)."""
    from antlr4.RuleContext import RuleContext

    texts: dict[int, str] = {}
    stack = [(tree, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, RuleContext):  # a terminal node: its token's text, made when its parent's is
            continue
        children = getattr(node, "children", None)
        if children_done or not children:
            texts[id(node)] = "".join(texts[id(c)] if id(c) in texts else c.getText() for c in children or ())
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return texts


class Kept:
    """The values of the keys put most recently (at most ``size``; the oldest put goes first), for any thread."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.values: dict = {}
        self.lock = threading.RLock()  # reentrant: ParseTrees holds it around a put

    def get(self, key):
        with self.lock:
            return self.values.get(key)

    def put(self, key, value) -> tuple[bool, object]:
        """Keep ``value`` unless ``key`` is kept already; (whether it was kept, the value it pushed out or None)."""
        with self.lock:
            if key in self.values:
                return False, None
            evicted = self.values.pop(next(iter(self.values))) if len(self.values) >= self.size else None
            self.values[key] = value
            return True, evicted


class ParseTrees:
    """ASL definition -> ANTLR parse tree (``Kept``), and the texts of the kept trees' rule nodes by id (a node's id is
    only in ``texts`` while its tree is kept: an id is not reused while its node lives)."""

    def __init__(self, size: int = 64) -> None:
        self.trees = Kept(size)
        self.texts: dict[int, str] = {}

    def get(self, definition: str):
        kept = self.trees.get(definition)
        return kept[0] if kept is not None else None

    def put(self, definition: str, tree) -> None:
        texts = rule_texts(tree)
        with self.trees.lock:  # the texts change with the trees they belong to
            added, evicted = self.trees.put(definition, (tree, tuple(texts)))
            for node_id in evicted[1] if evicted is not None else ():
                self.texts.pop(node_id, None)
            if added:
                self.texts.update(texts)


TREES = ParseTrees()


@hook("Step Functions definition cache")
def cache_stepfunctions_definition_parsing() -> str | None:
    from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
    from localstack.services.stepfunctions.asl.parse.preprocessor import Preprocessor

    def cached(parse):
        def cached_parse(definition: str):
            tree = TREES.get(definition)
            if tree is None:
                program, tree = parse(definition)  # raises on a syntax error: nothing is cached then
                TREES.put(definition, tree)
                return program, tree
            return Preprocessor().visit(tree), tree

        return cached_parse

    if not patch(AmazonStateLanguageParser, "parse", cached, wraps=True, kind=staticmethod):
        return None
    return "Step Functions definitions are parsed once"


def shareable_program(program, component_type: type, eval_type: type, unshared: tuple[type, ...]) -> bool:
    """Whether one evaluation program can serve every execution of its definition: none of its components is one of
    ``unshared`` (Map and Parallel states, which run workers of their own). Each evaluation component's heap key (made
    on first use, and the name of its state in an execution's heap: a Retry's attempt count) is made here, before the
    program is shared, so that no two executions race to make it."""
    seen: set[int] = set()
    stack = [program]
    while stack:
        thing = stack.pop()
        if id(thing) in seen:
            continue
        seen.add(id(thing))
        if isinstance(thing, unshared):
            return False
        if isinstance(thing, eval_type):
            thing.heap_key  # noqa: B018 - made now
        if isinstance(thing, component_type):
            stack.extend(vars(thing).values())
        elif isinstance(thing, (list, tuple, set, frozenset)):
            stack.extend(thing)
        elif isinstance(thing, dict):
            stack.extend(thing.values())
    return True


UNSHARED = object()  # a definition whose program is built per execution (kept so that it is not walked again)


@hook("Step Functions program cache")
def share_stepfunctions_programs() -> str | None:
    from localstack.services.stepfunctions.asl.component.component import Component
    from localstack.services.stepfunctions.asl.component.eval_component import EvalComponent
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.state_map import StateMap
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_parallel.state_parallel import (
        StateParallel,
    )
    from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker

    # With the parse tree kept, turning it into evaluation components was still ~7% of LocalStack's CPU in a burst
    # (py-spy, 2026-12-03): ~5 ms per execution for this project's state machine. The components keep nothing of an
    # execution: its state is in the execution's Environment (stack, heap, context), and a Retry counts its attempts
    # in that heap under the component's heap key. Programs with Map or Parallel states are still built per execution.
    programs = Kept()  # ASL definition -> the program its executions share, or UNSHARED

    def shared(get_entrypoint):
        def _get_evaluation_entrypoint(self):
            definition = self._evaluation_details.state_machine_details.definition
            program = programs.get(definition)
            if program is None:
                program = get_entrypoint(self)
                shared = shareable_program(program, Component, EvalComponent, (StateMap, StateParallel))
                programs.put(definition, program if shared else UNSHARED)
            elif program is UNSHARED:
                program = get_entrypoint(self)
            return program

        return _get_evaluation_entrypoint

    if not patch(ExecutionWorker, "_get_evaluation_entrypoint", shared, wraps=True):
        return None
    return "Step Functions executions of a definition without Map or Parallel states share its program"


@hook("Step Functions definition text cache")
def keep_stepfunctions_definition_texts() -> str | None:
    from antlr4.RuleContext import RuleContext

    # LocalStack's Preprocessor builds two error messages (f-strings with the whole program's getText()) before it
    # knows whether it needs them, at every execution start: ~6% of LocalStack's CPU in a burst (py-spy, 2026-12-03).
    # The kept trees are only read, so their nodes' texts are made once (any other node's, as ANTLR makes them).
    def kept_text(get_text):
        def getText(self) -> str:  # noqa: N802 - ANTLR's name
            text = TREES.texts.get(id(self))
            return text if text is not None else get_text(self)

        return getText

    if not patch(RuleContext, "getText", kept_text, wraps=True):
        return None
    return "Step Functions definitions' texts are made once per kept definition"


@hook("Step Functions service name cache")
def cache_stepfunctions_service_names() -> str | None:
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (
        state_task_service,
    )

    # Each service task turns the service's ~70 operation names and the parameters' names from CamelCase to snake_case
    # with a regular expression, to find the operation and match its shape (~2% of LocalStack's CPU in a burst):
    # the conversion and the operation found depend only on the names.
    service = state_task_service.StateTaskService
    if not patch(state_task_service, "camel_to_snake_case", functools.lru_cache(maxsize=4096), wraps=True):
        return None
    patch(service, "_get_boto_operation_model", functools.lru_cache(maxsize=1024), wraps=True, kind=staticmethod)
    return "Step Functions service tasks convert each operation and parameter name once"


@hook("scope-only signatures of in-memory internal requests")
def sign_internal_requests_by_scope() -> str | None:
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
    from localstack import config
    from localstack.aws.connect import InternalClientFactory

    # LocalStack's own calls to its services (Step Functions invoking Lambda, EventBridge starting executions, ...) are
    # SigV4-signed like any request, payload hash and HMACs included (through awscrt): ~4% of LocalStack's CPU in a
    # burst (py-spy, 2026-12-03). With IN_MEMORY_CLIENT they never leave the process, and LocalStack reads only the
    # Authorization header's credential scope (the access key gives the account, the scope the region): it checks no
    # signature but a presigned S3 URL's. Such a request keeps its headers and scope; its signature is zeros.
    # S3 clients (s3v4: payload hashes in headers) and every other signature version sign as before.
    if not config.IN_MEMORY_CLIENT:
        return None

    class ScopeOnlySigV4(SigV4Auth):
        def add_auth(self, request) -> None:
            request.context["timestamp"] = time.strftime(SIGV4_TIMESTAMP, time.gmtime())
            self._modify_request_before_signing(request)
            self._inject_signature_to_request(request, "0" * 64)

    def scope_only(post_hook):
        def _get_client_post_hook(self, client):
            client = post_hook(self, client)
            signer = client._request_signer
            get_auth_instance = signer.get_auth_instance

            def scope_only_auth(signing_name, region_name, signature_version=None, request_credentials=None, **kwargs):
                credentials = request_credentials or signer._credentials
                if (signature_version or signer._signature_version) != "v4" or credentials is None:
                    return get_auth_instance(
                        signing_name, region_name, signature_version, request_credentials, **kwargs
                    )
                return ScopeOnlySigV4(credentials.get_frozen_credentials(), signing_name, region_name)

            signer.get_auth_instance = scope_only_auth
            return client

        return _get_client_post_hook

    if not patch(InternalClientFactory, "_get_client_post_hook", scope_only, wraps=True):
        return None
    return "in-memory internal requests carry their credential scope, not a computed signature"


STATUS_CHANGE = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change"}


def may_match_status_change(rule, matches_event) -> bool:
    """Whether an EventBridge rule could match a Step Functions status-change event: False only for a scheduled rule
    without a pattern, or a pattern whose ``source`` or ``detail-type`` refuses the event's."""
    pattern = rule.event_pattern
    if not pattern:
        return not rule.schedule_expression
    try:
        fields = json.loads(pattern) if isinstance(pattern, str) else pattern
    except ValueError:
        return True
    if not isinstance(fields, dict) or "$or" in fields:
        return True
    heads = {k: fields[k] for k in STATUS_CHANGE if k in fields}
    return not heads or matches_event(json.dumps(heads), json.dumps(STATUS_CHANGE))


@hook("Step Functions status-change events without a rule")
def skip_unmatched_stepfunctions_status_events() -> str | None:
    from localstack.services.events.models import events_stores
    from localstack.services.stepfunctions.backend.execution import Execution
    from localstack.utils.event_matcher import matches_event

    # Every execution puts two "Step Functions Execution Status Change" events on its default event bus (started,
    # then ended), each through a client, the gateway's handler chain and a new thread: ~4% of LocalStack's CPU in a
    # burst (py-spy, 2026-12-03). AWS delivers these events only to the rules that match them (and does not bill
    # them). With no rule on that bus that could match one, nothing would receive it, so it is not sent.
    def when_a_rule_may_match(publish):
        def publish_execution_status_change_event(self):
            try:
                bus = events_stores[self.account_id][self.region_name].event_buses.get("default")
                rules = list(bus.rules.values()) if bus is not None else []
            except Exception:  # noqa: BLE001 - the store is not what we expect: send, as LocalStack does
                rules = None
            if rules is not None and not any(may_match_status_change(r, matches_event) for r in rules):
                return None
            return publish(self)

        return publish_execution_status_change_event

    if not patch(Execution, "publish_execution_status_change_event", when_a_rule_may_match, wraps=True):
        return None
    return "Step Functions status-change events are put on the default bus only if a rule there may match them"


class LogsStore:
    """The logs store of one account and region, written directly while nothing but storing is at stake."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def put(self, group: str, stream: str, events: list[dict]) -> bool:
        """True if ``events`` were stored in the existing ``stream``; False if the caller must use PutLogEvents."""
        try:
            from localstack.services.logs.models import get_moto_logs_backend
            from localstack.utils.bootstrap import is_api_enabled

            backend = get_moto_logs_backend(self.account, self.region)
            log_group = backend.groups.get(group)
            if log_group is None or stream not in log_group.streams:
                return False
            if is_api_enabled("cloudwatch") and backend.filters.metric_filters:
                return False
        except Exception as e:  # noqa: BLE001 - LocalStack's internals are not what we expect: use the API
            LOG.debug("localcloud: logs for %s/%s go through PutLogEvents: %s", group, stream, e)
            return False
        try:
            backend.put_log_events(group, stream, events)  # what the provider's call_moto ends in
        except Exception as e:  # noqa: BLE001 - as a failed PutLogEvents in LocalStack's own loop: logged, not retried
            LOG.warning("Error saving logs to group %s: %s", group, e)  # (a retry could store them twice)
        return True


class LazyClient:
    """A client made on its first use: every function version starts a log loop, and making its client (an assumed
    role and a botocore client, ~70 ms) was ~7% of LocalStack's CPU in a stack's first deploy (py-spy, 2026-12-03),
    though a version never invoked, or whose streams already exist, never calls it."""

    def __init__(self, make) -> None:
        self._make = make
        self._client = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)


def _put_batch(logs_client, items, store: LogsStore | None = None) -> None:
    """One PutLogEvents per log stream for the items taken from the queue together (in their order)."""
    streams: dict[tuple[str, str], list[dict]] = {}
    now = int(time.time() * 1000)
    for item in items:
        events = streams.setdefault((item.log_group, item.log_stream), [])
        events += [{"timestamp": now, "message": line + "\n"} for line in item.logs.split("\n") if line]
    for (group, stream), events in streams.items():
        if not events or (store is not None and store.put(group, stream, events)):
            continue
        try:
            try:
                logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except logs_client.exceptions.ResourceNotFoundException:
                try:
                    logs_client.create_log_group(logGroupName=group)
                except logs_client.exceptions.ResourceAlreadyExistsException:
                    pass
                logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
                logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as e:  # noqa: BLE001 - as LocalStack's own loop: a lost batch is logged, never fatal
            LOG.warning("Error saving logs to group %s: %s", group, e)


@hook("Lambda log batching")
def batch_lambda_log_delivery() -> str | None:
    from localstack.aws.connect import connect_to
    from localstack.services.lambda_.invocation.logs import QUEUE_SHUTDOWN, LogHandler
    from localstack.utils.aws.client_types import ServicePrincipal

    def run_log_loop(self, *args, **kwargs) -> None:
        logs_client = LazyClient(
            lambda: (
                connect_to.with_assumed_role(
                    region_name=self.region, role_arn=self.role_arn, service_principal=ServicePrincipal.lambda_
                ).logs
            )
        )
        store = LogsStore(self.role_arn.split(":")[4], self.region)  # the function's account: its role's
        while not self._shutdown_event.is_set():
            items = [self.log_queue.get()]
            while len(items) < LOG_BATCH_ITEMS and not self.log_queue.empty():
                items.append(self.log_queue.get_nowait())
            stop = QUEUE_SHUTDOWN in items
            _put_batch(logs_client, [i for i in items if i is not QUEUE_SHUTDOWN], store)
            if stop:
                return

    if not patch(LogHandler, "run_log_loop", run_log_loop):
        return None
    return "Lambda logs waiting together go in one PutLogEvents per stream"


@hook("DynamoDB expression parse cache")
def cache_dynamodb_expression_parsing() -> str | None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Expression, Node, UpdateExpressionFunction
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    make = UpdateExpressionParser.make  # bound to the class
    lex = ConditionExpressionParser._lex_condition_expression
    deepcopy = validators.deepcopy

    # An UpdateItem tokenises and parses its UpdateExpression twice (the request's check, then the update), lexes its
    # ConditionExpression, deep-copies the parsed tree for its validators (pure-Python copy.deepcopy) and has ten
    # validators walk the copy, each building its map of node classes again at every node: together ~20% of
    # LocalStack's CPU in a burst (py-spy, 2026-12-03).
    # - moto only reads the parsed tree (find_clauses) or copies it before its validators rewrite it
    #   (Validator.__init__), so one tree per expression string serves every request, and the copy is made from that
    #   tree's pickle (C) instead of copy.deepcopy; an expression that does not tokenise or parse raises each time
    #   (nothing is kept for it);
    # - the lexed condition is a sequence of immutable nodes (namedtuples without children) that the parser consumes
    #   from a copy of the queue;
    # - a traverser's map of node classes to its methods is the same for its whole life: made once per traverser;
    # - the tree's classes are ABCs (``isinstance`` goes through ABCMeta.__instancecheck__, a Python frame: 10% of an
    #   UpdateItem's samples) with no virtual subclass registered, so the walks test the class's MRO instead.
    @functools.lru_cache(maxsize=1024)
    def update_tree(expression: str):
        tree = make(expression)
        tree.localcloud_pickle = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)  # set after pickling: copies lack it
        return tree

    def cached_make(cls, expression_str):
        if not isinstance(expression_str, str):
            return make(expression_str)
        return update_tree(expression_str)

    def copy_for_validation(node, memo=None):
        data = getattr(node, "localcloud_pickle", None)
        if data is None or memo is not None:
            return deepcopy(node, memo)
        return pickle.loads(data)

    @functools.lru_cache(maxsize=1024)
    def condition_nodes(expression: str) -> tuple:
        return tuple(lex(_Lexing(expression)))

    def cached_lex(self):
        expression = self.condition_expression
        if not isinstance(expression, str):
            return lex(self)
        return collections.deque(condition_nodes(expression))

    class _Lexing(ConditionExpressionParser):  # lexing reads only the expression (and the class's patterns)
        def __init__(self, expression: str) -> None:
            self.condition_expression = expression

    def processing_map(self) -> dict:
        kept = self.__dict__.get("_localcloud_map")
        if kept is None:
            kept = self.__dict__["_localcloud_map"] = self._processing_map()
            self.__dict__["_localcloud_types"] = tuple(kept)
        return kept

    def nodes_to_be_processed(self) -> tuple:
        processing_map(self)
        return self.__dict__["_localcloud_types"]

    def process(self, node):
        mro = type(node).__mro__
        for class_key, processor in processing_map(self).items():
            if class_key in mro:
                return processor(node)

    def traverse_node_recursively(self, node, child_id=-1):  # moto's, with the MRO tests
        mro = type(node).__mro__
        if Node in mro:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            if any(c in mro for c in self.nodes_to_be_processed()):
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    def find_clauses(self, clause_types):  # moto's, with the MRO tests
        clauses = []
        for child in self.children or []:
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
            elif Expression in kind.__mro__ or UpdateExpressionFunction in kind.__mro__:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    if not patch(UpdateExpressionParser, "make", cached_make, kind=classmethod):
        return None
    patch(ConditionExpressionParser, "_lex_condition_expression", cached_lex)
    patch(validators, "deepcopy", copy_for_validation)
    patch(DepthFirstTraverser, "nodes_to_be_processed", nodes_to_be_processed)
    patch(DepthFirstTraverser, "process", process)
    patch(DepthFirstTraverser, "traverse_node_recursively", traverse_node_recursively)
    patch(Node, "find_clauses", find_clauses)
    return "DynamoDB update expressions are tokenised and parsed, condition expressions lexed, once each"


@hook("moto action lookup cache")
def cache_moto_action_lookup() -> str | None:
    from moto.core import responses

    def cached(names):
        per_class = functools.cache(lambda cls: tuple(names(cls)))

        def cached_names(clazz) -> list[str]:
            return list(per_class(clazz))

        return cached_names

    if not patch(responses, "method_names_from_class", cached, wraps=True):
        return None
    return "moto finds each action's handler without listing its class on every request"


@hook("DescribeLogGroups without copying the logs")
def describe_log_groups_without_copying_the_logs() -> str | None:
    from localstack.aws.api import handler
    from localstack.services.logs import provider
    from moto.logs.models import LogGroup

    # LocalStack's DescribeLogGroups deep-copies every log group of the region, with every stream and every event in
    # it, and its patch of moto's LogGroup.to_describe_dict deep-copies the group's streams again (against a race with
    # a stream being added while their sizes are summed), to read a few fields: names, times, sizes. The cost grows with
    # every log line the local cloud keeps: ~0.6 s per call after 35,000 events. CloudFormation calls it for each log
    # group it creates (7 per deploy of this stack): ~2% of a lane's LocalStack CPU in `make test` (py-spy,
    # 2026-12-04), more on a local cloud that has run for a day. Same answer, from snapshots of the group and stream
    # lists (``list()`` of a dict's values is one step under the GIL: no race) and without the copies.
    def to_describe_dict(self) -> dict:
        group = {
            "arn": f"{self.arn}:*",
            "logGroupArn": self.arn,
            "creationTime": self.creation_time,
            "logGroupName": self.name,
            "metricFilterCount": 0,
            "storedBytes": sum(stream.stored_bytes for stream in list(self.streams.values())),
        }
        if self.retention_in_days:
            group["retentionInDays"] = self.retention_in_days
        if self.kms_key_id:
            group["kmsKeyId"] = self.kms_key_id
        return group

    @handler("DescribeLogGroups", expand=False)
    def describe_log_groups(self, context, request):
        backend = provider.get_moto_logs_backend(context.account_id, context.region)
        prefix = request.get("logGroupNamePrefix", "")
        pattern = request.get("logGroupNamePattern", "")
        if pattern and prefix:
            raise provider.InvalidParameterException(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        groups = [
            {"logGroupClass": provider.LogGroupClass.STANDARD} | group.to_describe_dict()
            for group in sorted(list(backend.groups.values()), key=lambda g: g.name)
            if not (prefix or pattern)
            or (prefix and group.name.startswith(prefix))
            or (pattern and pattern in group.name)
        ]
        return provider.DescribeLogGroupsResponse(logGroups=groups)

    if not patch(provider.LogsProvider, "describe_log_groups", describe_log_groups):
        return None
    patch(LogGroup, "to_describe_dict", to_describe_dict)
    return "DescribeLogGroups answers without deep copies of every log group's events"


@hook("Lambda code URL client cache")
def cache_lambda_code_url_clients() -> str | None:
    import boto3
    from localstack import config
    from localstack.constants import AWS_REGION_US_EAST_1, INTERNAL_AWS_SECRET_ACCESS_KEY
    from localstack.services.lambda_.invocation.lambda_models import S3Code

    # LocalStack's generate_presigned_url makes a new boto3 client for every URL it signs (~30-50 ms of CPU);
    # CloudFormation calls GetFunction while it waits for each function it creates, and so do clients: 2-4% of
    # LocalStack's CPU in `make test` (py-spy, 2026-12-03). A client signs with the time of the call, so one kept per
    # endpoint signs the same URLs.
    @functools.cache
    def client(endpoint_url: str):
        return boto3.client(  # what LocalStack's generate_presigned_url makes each time
            "s3",
            region_name=AWS_REGION_US_EAST_1,
            aws_access_key_id=config.INTERNAL_RESOURCE_ACCOUNT,
            aws_secret_access_key=INTERNAL_AWS_SECRET_ACCESS_KEY,
            endpoint_url=endpoint_url,
        )

    def generate_presigned_url(self, endpoint_url: str) -> str:
        params = {"Bucket": self.s3_bucket, "Key": self.s3_key}
        if self.s3_object_version:
            params["VersionId"] = self.s3_object_version
        return client(endpoint_url).generate_presigned_url("get_object", Params=params)

    if not patch(S3Code, "generate_presigned_url", generate_presigned_url):
        return None
    return "Lambda code URLs are signed by one client per endpoint"


def regions_from_one_session(make_session):
    """LocalStack's ``get_valid_regions_for_service`` (the service's regions, and CloudWatch's in every partition but
    "aws"), computed with one session from ``make_session`` for every service instead of a new one per service."""
    lock = threading.Lock()
    sessions: list = []

    @functools.cache
    def get_valid_regions_for_service(service_name: str) -> list[str]:
        with lock:  # a botocore session's loader and resolver are made on first use, unguarded
            if not sessions:
                sessions.append(make_session())
            session = sessions[0]
            regions = list(session.get_available_regions(service_name))
            for partition in session.get_available_partitions():
                if partition != "aws":
                    regions.extend(session.get_available_regions("cloudwatch", partition_name=partition))
            return regions

    return get_valid_regions_for_service


@hook("service regions from one botocore session")
def valid_regions_from_one_session() -> str | None:
    import boto3
    from localstack.utils.aws import aws_stack

    # Each service's store, at its first use, asks for the service's valid regions, which LocalStack computes from a
    # new boto3 Session: each reads botocore's endpoints.json (1.3 MB of JSON) again, 60-270 ms of CPU per service and
    # ~1.2 s per LocalStack process, most of it during the first deploy (py-spy, 2026-12-04). One session reads it once.
    original = aws_stack.get_valid_regions_for_service
    replacement = regions_from_one_session(boto3.Session)
    if not patch(aws_stack, "get_valid_regions_for_service", replacement):
        return None
    rebind_imported("get_valid_regions_for_service", original, replacement)
    return "services' valid regions come from one botocore session"


@hook("Lambda code from S3 copied within S3")
def copy_lambda_code_within_s3() -> str | None:
    import base64
    import hashlib
    import io
    import uuid

    from botocore.exceptions import ClientError
    from localstack import config
    from localstack.aws.api.lambda_ import InvalidParameterValueException
    from localstack.aws.connect import connect_to
    from localstack.constants import AWS_REGION_US_EAST_1
    from localstack.services.lambda_.invocation import lambda_service
    from localstack.services.lambda_.invocation.lambda_models import S3Code
    from localstack.utils.archives import get_unzipped_size, is_zip_file

    # A function's or layer's code given as an S3 object (what CloudFormation and `sam package` give) is read from its
    # bucket, checked, and uploaded again into LocalStack's own bucket: for this project's 44 MB layer, once per stack
    # deploy, in 8 MB parts through s3transfer's threads, the gateway and S3's handler, with SigV4 payload hashes, CRC32
    # and MD5 on the way (~7% of LocalStack's CPU in `make test`, py-spy 2026-12-04). It is read and checked as before,
    # then copied within S3, on condition that it is still the object that was read (its ETag); if the copy fails,
    # the bytes that were read are stored as LocalStack stores them. The stored object, its key, hash and size are
    # what LocalStack's path gives.
    original = lambda_service.store_s3_bucket_archive

    def store_s3_bucket_archive(archive_bucket, archive_key, archive_version, function_name, region_name, account_id):
        if archive_bucket == config.BUCKET_MARKER_LOCAL:  # hot reloading: no archive
            return original(archive_bucket, archive_key, archive_version, function_name, region_name, account_id)
        s3_client = connect_to().s3
        version = {"VersionId": archive_version} if archive_version else {}
        try:
            got = s3_client.get_object(Bucket=archive_bucket, Key=archive_key, **version)
            archive_file = got["Body"].read()
        except s3_client.exceptions.ClientError as e:  # LocalStack's message
            raise InvalidParameterValueException(
                f"Error occurred while GetObject. S3 Error Code: {e.response['Error']['Code']}. "
                f"S3 Error Message: {e.response['Error']['Message']}",
                Type="User",
            ) from e
        store = lambda_service.store_lambda_archive
        if not is_zip_file(archive_file):
            return store(archive_file, function_name, region_name, account_id)  # refused there, with its error
        if get_unzipped_size(io.BytesIO(archive_file)) >= config.LAMBDA_LIMITS_CODE_SIZE_UNZIPPED:
            return store(archive_file, function_name, region_name, account_id)
        internal = connect_to(region_name=AWS_REGION_US_EAST_1, aws_access_key_id=config.INTERNAL_RESOURCE_ACCOUNT).s3
        bucket_name = f"awslambda-{region_name}-tasks"
        internal.create_bucket(Bucket=bucket_name)
        code_id = f"{function_name}-{uuid.uuid4()}"
        key = f"snapshots/{account_id}/{code_id}"
        source = {"Bucket": archive_bucket, "Key": archive_key, **version}
        try:
            internal.copy_object(CopySource=source, CopySourceIfMatch=got["ETag"], Bucket=bucket_name, Key=key)
        except ClientError:  # replaced since it was read, say: the bytes that were checked
            return store(archive_file, function_name, region_name, account_id)
        return S3Code(
            id=code_id,
            account_id=account_id,
            s3_bucket=bucket_name,
            s3_key=key,
            s3_object_version=None,
            code_sha256=base64.b64encode(hashlib.sha256(archive_file).digest()).decode(),
            code_size=len(archive_file),
        )

    if not patch(lambda_service, "store_s3_bucket_archive", store_s3_bucket_archive):
        return None
    rebind_imported("store_s3_bucket_archive", original, lambda_service.store_s3_bucket_archive)  # Lambda's provider
    return "Lambda code given as an S3 object is copied within S3 instead of uploaded again"


class ThreadRoutes:
    def __init__(self, listed) -> None:
        self.listed = listed

    @route("/_localcloud/threads", methods=["GET"])
    def thread_stats(self, request: Request) -> Response:
        kinds = collections.Counter(type(t).__name__ for t in self.listed.threads[:])
        body = {
            "listed": len(self.listed.threads),
            "kinds": dict(kinds),
            "pruned": self.listed.pruned,
            "running": threading.active_count(),
        }
        return Response(json.dumps(body), status=200, mimetype="application/json")


@hook("moto's Batch backend loaded on first use", priority=200)  # before any hook imports the Step Functions engine
def defer_moto_batch_backend() -> str | None:
    from localcloud.lazy import deferred_package

    # The Step Functions engine imports ``moto.batch.utils`` (JobStatus, for its Batch integration), and moto.batch's
    # __init__ imports moto's Batch backend and through it EC2's (region, zone and instance-type tables from botocore's
    # data files): ~45% of LocalStack's start-up CPU (py-spy), for services this local cloud does not run. The package is
    # registered with its body deferred: its submodules import as usual, and the body runs on first use of the package
    # itself (``from moto.batch import batch_backends``, what moto's backend lookup does).
    def on_run(attribute: str) -> None:
        LOG.info("localcloud: moto.batch's body runs now (asked for %s)", attribute)

    if deferred_package("moto.batch", on_run) is None:
        return None
    return "moto.batch's body deferred to its first use (the Step Functions engine imports only moto.batch.utils)"


@hook("bounded thread list")
def bound_the_thread_list() -> str | None:
    from localstack.services.edge import ROUTER
    from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker
    from localstack.utils.threads import TMP_THREADS, FuncThread

    from localcloud.threadlist import ThreadList

    # LocalStack lists ~10 thread objects per image of this project's workflow (its executions' and states' threads, and
    # one per Lambda invocation that records its CloudWatch metrics) and never drops one (~20 KB per image; see
    # docs/local-cloud.md, a bounded thread list); each execution's start prunes the finished ones, once the list has
    # doubled since the last prune.
    listed = ThreadList(TMP_THREADS, kinds=(threading.Thread, FuncThread))

    def pruning(start):
        def start_and_prune(self) -> None:
            start(self)
            listed.maybe_prune()

        return start_and_prune

    if not patch(ExecutionWorker, "start", pruning, wraps=True):
        return None
    ROUTER.add(ThreadRoutes(listed))
    return "finished threads leave LocalStack's thread list (counts at /_localcloud/threads)"


_GC_POLICY = None


class GcRoutes:
    def __init__(self, policy) -> None:
        self.policy = policy

    @route("/_localcloud/gc", methods=["GET"])
    def gc_stats(self, request: Request) -> Response:
        return Response(json.dumps(self.policy.stats()), status=200, mimetype="application/json")


@hook("garbage collection policy")
def tune_garbage_collection() -> str | None:
    """``LOCALCLOUD_GC=freeze`` (the default): localcloud.gcpolicy; ``python``: Python's collector as it comes (the
    counters at /_localcloud/gc either way)."""
    from localstack.services.edge import ROUTER

    from localcloud.gcpolicy import GcPolicy

    global _GC_POLICY
    if _GC_POLICY is not None:
        return None
    policy = _GC_POLICY = GcPolicy(freeze=os.environ.get("LOCALCLOUD_GC", "freeze") != "python").install()
    ROUTER.add(GcRoutes(policy))
    how = "freezes what each full collection keeps" if policy.freeze else "as Python's"
    return f"garbage collection {how} (counters at /_localcloud/gc)"
