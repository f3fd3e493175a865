"""Patches of moto's DynamoDB expressions (``moto.dynamodb``, moto-ext 5.1.25), which the ``dynamodb:moto`` provider
(localcloud.plugins.dynamodb) serves.

An UpdateItem tokenises its UpdateExpression character by character in pure Python and parses it, twice (once to
check the request, once to apply it), lexes its ConditionExpression, deep-copies the parsed tree for ten validators
whose walks rebuild a map at every node and test ABCs with ``isinstance``: one tree per expression (so each is
tokenised once), copied from its pickle, conditions lexed once, the walks without ABC checks (~35% less LocalStack
CPU per UpdateItem, measured side by side; the tokenising alone was ~8% of LocalStack's CPU in a burst).
"""

from __future__ import annotations

import collections
import functools
import pickle

from localcloud.patching import Patch, hook, patch_all


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

    def nodes_to_be_processed(self) -> tuple:  # moto's, from the map made once
        processing_map(self)
        return self.__dict__["_localcloud_types"]

    def process(self, node):  # moto's, with the MRO tests and the map made once
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

    ast_nodes = "moto.dynamodb.parsing.ast_nodes"
    if not patch_all(
        Patch(UpdateExpressionParser, "make", cached_make, kind=classmethod),
        Patch(ConditionExpressionParser, "_lex_condition_expression", cached_lex),
        Patch(validators, "deepcopy", copy_for_validation),
        Patch(
            DepthFirstTraverser,
            "nodes_to_be_processed",
            nodes_to_be_processed,
            copies={f"{ast_nodes}:DepthFirstTraverser.nodes_to_be_processed": "1c2c84c8097e3517"},
        ),
        Patch(
            DepthFirstTraverser,
            "process",
            process,
            copies={f"{ast_nodes}:DepthFirstTraverser.process": "58328ec7c2f9b1f9"},
        ),
        Patch(
            DepthFirstTraverser,
            "traverse_node_recursively",
            traverse_node_recursively,
            copies={f"{ast_nodes}:DepthFirstTraverser.traverse_node_recursively": "d7f01d9b45cf9f64"},
        ),
        Patch(Node, "find_clauses", find_clauses, copies={f"{ast_nodes}:Node.find_clauses": "b77be7ac447d7617"}),
    ):
        return None
    return "DynamoDB update expressions are tokenised and parsed, condition expressions lexed, once each"
