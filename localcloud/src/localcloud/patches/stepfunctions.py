"""Patches of LocalStack's Step Functions engine (``localstack.services.stepfunctions``, localstack-core 2026.3.0).

Speed. Measured on these 2-core machines (bench/localcloud_bench.py), a Lambda task took ~70 ms against a ~12 ms
direct invoke, because for every state LocalStack
- assumes the state machine's role (an internal STS call) and builds a new botocore client for the
  fresh credentials; AWS reuses a role session for its lifetime, we reuse the assumed-role client
  factory for 10 minutes per (role, principal, region, config);
- parses every JSONPath (InputPath, OutputPath, ResultPath, ...) with jsonpath_ng, which makes a new ply parser,
  LALR tables and all, for each parse (~17 ms); parsed expressions are not changed by finding matches, so each
  path is parsed once, by one parser, while executions that need it at the same moment wait for that parse;
- parses the whole ASL definition with ANTLR (pure Python) at every execution start: ~53 ms for this
  project's state machine, then ~10 ms to turn the parse tree into evaluation components. The parse tree
  is only read by that step, so we keep it per definition, with the text of each of its nodes (that step formats
  the whole program's text into two error messages it rarely raises: ANTLR's ``RuleContext.getText``, antlr4-python3-
  runtime 4.13.2, is patched for the kept trees); and the components, which keep nothing of an execution, are built
  once per definition and shared by its executions, unless it has Map or Parallel states (these are still built for
  every execution: they run workers of their own);
- turns the service's operation names and the task's parameter names from CamelCase to snake_case at every service
  task: once per name;
- puts two "Step Functions Execution Status Change" events per execution on the default event bus, through a client,
  the gateway and a new thread each; we send them only if a rule on that bus may match them (nothing else would see
  them);
- lists every thread an execution starts and never drops one (localcloud.threadlist bounds the list).

Fidelity: numeric DefinitionSubstitutions, ``.sync`` on Express children, and Distributed Map failure thresholds and
result files (see each hook).
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from localstack.http import Request, Response, route

from localcloud.caches import Kept, MadeOnce
from localcloud.patching import Patch, Unexpected, hook, patch_all

LOG = logging.getLogger(__name__)


SESSION_REUSE_S = 600


CLOSE_HANDLER_ID = "localcloud-connection-close"


def _close_after_response(request, **kwargs) -> None:
    request.headers["Connection"] = "close"


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

    if not patch_all(Patch(boto_client, "connect_to", CachedAssumedRoles, wraps=True)):
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

    if not patch_all(*(Patch(module, "parse", parsed_once, wraps=True) for module in (json_path, result_path))):
        return None
    return "Step Functions JSONPaths are parsed once each, by one parser"


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

    if not patch_all(Patch(AmazonStateLanguageParser, "parse", cached, wraps=True, kind=staticmethod)):
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

    if not patch_all(Patch(ExecutionWorker, "_get_evaluation_entrypoint", shared, wraps=True)):
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

    if not patch_all(Patch(RuleContext, "getText", kept_text, wraps=True)):
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
    if not patch_all(
        Patch(state_task_service, "camel_to_snake_case", functools.lru_cache(maxsize=4096), wraps=True),
        Patch(service, "_get_boto_operation_model", functools.lru_cache(maxsize=1024), wraps=True, kind=staticmethod),
    ):
        return None
    return "Step Functions service tasks convert each operation and parameter name once"


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

    if not patch_all(Patch(Execution, "publish_execution_status_change_event", when_a_rule_may_match, wraps=True)):
        return None
    return "Step Functions status-change events are put on the default bus only if a rule there may match them"


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

    if not patch_all(Patch(ExecutionWorker, "start", pruning, wraps=True)):
        return None
    ROUTER.add(ThreadRoutes(listed))
    return "finished threads leave LocalStack's thread list (counts at /_localcloud/threads)"


@hook("numeric DefinitionSubstitutions fix")
def substitute_numbers_in_state_machine_definitions() -> str | None:
    from localstack.services.stepfunctions.resource_providers import aws_stepfunctions_statemachine as provider

    def as_text(original):
        @functools.wraps(original)
        def _apply_substitutions(definition: str, substitutions: dict) -> str:
            texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in substitutions.items()}
            return original(definition, texts)

        return _apply_substitutions

    if not patch_all(Patch(provider, "_apply_substitutions", as_text, wraps=True)):
        return None
    return "DefinitionSubstitutions may hold numbers"


class _WaitsOnExpress:
    """The Step Functions client of a ``.sync`` task: DescribeExecution of an Express child reads Step Functions' own
    record of it (what the service knows internally), every other call goes to the client."""

    def __init__(self, client) -> None:
        self._client = client

    def describe_execution(self, executionArn: str, **kwargs):  # noqa: N803 — boto3's parameter name
        if ":express:" in executionArn:
            from localstack.services.stepfunctions.backend.models import sfn_stores

            _, _, _, region, account, *_ = executionArn.split(":")
            execution = sfn_stores[account][region].executions.get(executionArn)
            if execution is not None:
                return execution.to_describe_output()
        return self._client.describe_execution(executionArn=executionArn, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


@hook(".sync on Express children")
def sync_on_express_children() -> str | None:
    """A Standard workflow waits on an Express child (``states:startExecution.sync``/``.sync:2``), as on AWS. LocalStack
    waits by polling DescribeExecution, which it (rightly) refuses for an Express execution, so every such task failed
    with InvalidArn after its child had run (the backfill of an Express pipeline reported every image failed). Callers
    are still refused; only the task's own polling reads the child's status."""
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (
        state_task_service_sfn as sfn_task,
    )

    def waiting_on_express(original):
        @functools.wraps(original)
        def boto_client_for(service: str, *args, **kwargs):
            client = original(*args, service=service, **kwargs)
            return _WaitsOnExpress(client) if service == "stepfunctions" else client

        return boto_client_for

    if not patch_all(Patch(sfn_task, "boto_client_for", waiting_on_express, wraps=True)):
        return None
    return "Step Functions waits on Express children (.sync)"


# ---------------------------------------------------------------- Distributed Map: failure threshold, result files

RESULTS = "_localcloud_results"  # a Map Run record's results so far: one record per child execution that ended


POOL = "_localcloud_pool"  # and its job pool: what was never started when the run failed


CHILD_INPUT = "_localcloud_child_input"  # a job frame's child input (after ItemSelector)


def exceeds_tolerance(failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether ``failed`` of ``total`` items fail a Map Run that tolerates ``count`` failures and ``percentage`` per
    cent: past either threshold that is set; with neither set (both 0, the default), past none. (A threshold of 0 set
    explicitly beside the other counts as not set: LocalStack keeps no trace of which fields were given.)"""
    limits = []
    if count:
        limits.append(failed > count)
    if percentage:
        limits.append(total > 0 and failed * 100 > percentage * total)
    return any(limits) if limits else failed > 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def child_result(
    map_run_arn: str,
    map_state_machine_arn: str,
    child_input: Any,
    status: str,
    started: datetime,
    stopped: datetime | None,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """One child execution as AWS writes it in a result file (its input and output as JSON text)."""
    name = str(uuid.uuid4())
    record: dict[str, Any] = {
        "ExecutionArn": f"{map_state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}",
        "Input": json.dumps(child_input),
        "InputDetails": {"Included": True},
        "Name": name,
        "MapRunArn": map_run_arn,
        "StartDate": _iso(started),
        "StateMachineArn": map_state_machine_arn,
        "Status": status,
    }
    if stopped is not None:
        record["StopDate"] = _iso(stopped)
    if status == "SUCCEEDED":
        record["Output"] = json.dumps(output)
        record["OutputDetails"] = {"Included": True}
    elif status != "PENDING":
        record["Error"] = error or "States.Runtime"
        record["Cause"] = cause or ""
    return record


def result_files(prefix: str, map_run_arn: str, results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The result files of a Map Run under ``prefix``, as AWS lays them out: {key: records}; SUCCEEDED_0.json,
    FAILED_0.json (failed, timed out and aborted children) and PENDING_0.json (never started), each only if it has
    records, and manifest.json (``{"ResultFiles": {"FAILED": [{"Key", "Size"}], ...}}``, written last) naming them."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{map_run_arn.rsplit(':', 1)[-1]}/"
    grouped: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for result in results:
        group = result["Status"] if result["Status"] in ("SUCCEEDED", "PENDING") else "FAILED"
        grouped[group].append(result)
    return {f"{folder}{group}_0.json": records for group, records in grouped.items() if records}


@hook("Distributed Map failure thresholds and result files")
def judge_and_report_distributed_maps() -> str | None:
    """A Distributed Map's Map Run fails with States.ExceedToleratedFailureThreshold once more of its items failed
    than ToleratedFailurePercentage/ToleratedFailureCount allow (none, by default), as on AWS: it starts no more
    children (those running finish; AWS stops them). Its ResultWriter writes what AWS writes, whether the run
    succeeded or failed: a JSON array of the child executions per status (SUCCEEDED_0.json, FAILED_0.json,
    PENDING_0.json) and a manifest.json naming them, its Parameters' paths read from the state's input. LocalStack
    2026.3.0 parses the threshold fields and applies neither (every item's failure was tolerated), its manifest.json
    named no result file (a TODO), and it read the Parameters' paths from the children's outputs."""
    from localstack.aws.api.stepfunctions import HistoryEventType, MapRunFailedEventDetails
    from localstack.services.stepfunctions.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from localstack.services.stepfunctions.asl.component.common.error_name.states_error_name import StatesErrorName
    from localstack.services.stepfunctions.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map import state_map
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.iteration import (
        distributed_iteration_component,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as worker,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer import (
        result_writer_decl,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.credentials import (
        StateCredentials,
    )
    from localstack.services.stepfunctions.asl.eval.event.event_detail import EventDetails
    from localstack.services.stepfunctions.asl.eval.program_state import ProgramEnded, ProgramError, ProgramStopped
    from localstack.services.stepfunctions.asl.utils.boto_client import boto_client_for

    def keeping_the_child_input(original):
        @functools.wraps(original)
        def _eval_input(self, env_frame) -> None:
            original(self, env_frame)
            setattr(env_frame, CHILD_INPUT, env_frame.states.get_input())

        return _eval_input

    def judging(original):
        @functools.wraps(original)
        def _eval_job(self, env, job) -> None:
            record = self._map_run_record
            record.__dict__.setdefault(POOL, self._job_pool)
            started = datetime.now(UTC)
            original(self, env, job)
            state = env.program_state()
            child_input = getattr(env, CHILD_INPUT, job.job_input)
            arns = (record.map_run_arn, record.map_state_machine_arn)
            if isinstance(state, ProgramEnded):
                result = child_result(*arns, child_input, "SUCCEEDED", started, datetime.now(UTC), job.job_output)
            else:
                details = (state.error or {}) if isinstance(state, ProgramError) else {}
                status = "ABORTED" if isinstance(state, ProgramStopped) else "FAILED"
                error, cause = details.get("error"), details.get("cause")
                result = child_result(*arns, child_input, status, started, datetime.now(UTC), None, error, cause)
            result["_index"] = job.job_index
            record.__dict__.setdefault(RESULTS, []).append(result)
            counts = record.item_counter
            failed, total = counts.failed.get() + counts.timed_out.get(), self._job_pool._jobs_number
            if exceeds_tolerance(failed, total, record.tolerated_failure_count, record.tolerated_failure_percentage):
                cause = (
                    f"{failed} of {total} items failed, more than tolerated (ToleratedFailureCount "
                    f"{record.tolerated_failure_count}, ToleratedFailurePercentage {record.tolerated_failure_percentage})"
                )
                name = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
                details = MapRunFailedEventDetails(error=name.error_name, cause=cause)
                event = FailureEvent(
                    env=self._env,
                    error_name=name,
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(mapRunFailedEventDetails=details),
                )
                job.job_output = FailureEventException(failure_event=event)  # the pool starts no further job

        return _eval_job

    def write_results(s3, bucket: str, prefix: str, record) -> str:
        """Write the Map Run's result files and its manifest; the manifest's key."""
        results = sorted(record.__dict__.get(RESULTS, []), key=lambda r: r["_index"])
        pool = record.__dict__.get(POOL)
        never_started = list(reversed(pool._open_jobs)) if pool is not None and record.status != "SUCCEEDED" else []
        arns = (record.map_run_arn, record.map_state_machine_arn)
        results += [child_result(*arns, job.job_input, "PENDING", record.start_date, None) for job in never_started]
        files = result_files(
            prefix, record.map_run_arn, [{k: v for k, v in r.items() if k != "_index"} for r in results]
        )
        listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for key, records in files.items():
            body = json.dumps(records).encode()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            listed[key.rsplit("/", 1)[-1].split("_", 1)[0]].append({"Key": key, "Size": len(body)})
        folder = prefix.rstrip("/") + "/" if prefix else ""
        manifest = f"{folder}{record.map_run_arn.rsplit(':', 1)[-1]}/manifest.json"
        body = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": listed}
        s3.put_object(Bucket=bucket, Key=manifest, Body=json.dumps(body, indent=2).encode())
        return manifest

    def parameters_of(result_writer, env) -> dict[str, Any]:
        """The ResultWriter's Parameters, their paths read from the Map state's input as on AWS (LocalStack read them
        from the children's outputs: a ``Bucket.$`` or ``Prefix.$`` failed the state with States.Runtime)."""
        env.stack.append(env.states.get_input())
        result_writer.parargs.eval(env)
        parameters = env.stack.pop()
        env.stack.pop()
        return parameters

    def _eval_body(self, env) -> None:  # a copy of LocalStack's, the Parameters' paths read from the state's input
        env.stack.append(parameters_of(self, env))
        self.resource_eval.eval_resource(env)

    def _handle_put_object(env, resource_runtime_part, state_credentials) -> None:  # LocalStack's, writing the results
        parameters = env.stack.pop()
        env.stack.pop()  # the children's outputs: the result files hold them
        record = env.map_run_record_pool_manager.get_all().pop()
        s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
        key = write_results(s3, parameters["Bucket"], parameters.get("Prefix", ""), record)
        env.stack.append(
            {"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}}
        )

    def reporting_failed_runs(original):
        @functools.wraps(original)
        def _eval_execution(self, env) -> None:
            try:
                original(self, env)
            except Exception:
                distributed = isinstance(
                    self.iteration_component, distributed_iteration_component.DistributedIterationComponent
                )
                if self.result_writer is not None and distributed and env.map_run_record_pool_manager.get_all():
                    try:
                        parameters = parameters_of(self.result_writer, env)
                        self.result_writer.resource.eval(env)
                        region = env.stack.pop().region
                        credentials = StateCredentials(role_arn=env.aws_execution_details.role_arn)
                        s3 = boto_client_for(service="s3", region=region, state_credentials=credentials)
                        record = env.map_run_record_pool_manager.get_all()[-1]
                        write_results(s3, parameters["Bucket"], parameters.get("Prefix", ""), record)
                    except Exception:
                        LOG.warning("localcloud: the failed Map Run's results were not written", exc_info=True)
                raise

        return _eval_execution

    worker_class = worker.DistributedItemProcessorWorker
    result_writer = "localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer"
    if not patch_all(
        Patch(worker_class, "_eval_job", judging, wraps=True),
        Patch(worker_class, "_eval_input", keeping_the_child_input, wraps=True),
        Patch(
            result_writer_decl.ResultWriter,
            "_eval_body",
            _eval_body,
            copies={f"{result_writer}.result_writer_decl:ResultWriter._eval_body": "bcde5765f0a578a3"},
        ),
        Patch(
            resource_eval_s3.ResourceEvalS3,
            "_handle_put_object",
            _handle_put_object,
            kind=staticmethod,
            copies={
                f"{result_writer}.resource_eval.resource_eval_s3:ResourceEvalS3._handle_put_object": "1e8a4a2f98f7e271"
            },
        ),
        Patch(state_map.StateMap, "_eval_execution", reporting_failed_runs, wraps=True),
    ):
        return None
    return "Distributed Map runs fail past their failure threshold and write their result files"
