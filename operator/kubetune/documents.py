"""Reading Experiment files as ``kubectl apply`` reads them: strict YAML.

Purely computational (text in, documents out). Two differences from PyYAML's ``safe_load``
would otherwise let a file mean one thing to ``kubetune run`` and another to ``kubectl``:

* a key given twice in one mapping is an error (PyYAML keeps the last one silently; the API
  server's strict decoding refuses it);
* an unquoted ``y``, ``Y``, ``n`` or ``N`` is a boolean, as in the YAML 1.1 that kubectl's parser
  follows (PyYAML reads it as a string), so a parameter named ``y`` or a categorical value ``n``
  is refused here as it is at apply time, with a hint to quote it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads y/n as booleans (see the module docstring)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    first = seen[key].start_mark
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        value = self.construct_scalar(node)
        if value in ("y", "Y"):
            return True
        if value in ("n", "N"):
            return False
        return bool(super().construct_yaml_bool(node))


StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
StrictLoader.add_constructor("tag:yaml.org,2002:bool", StrictLoader.construct_yaml_bool)


def load_all(text: str) -> list[Any]:
    """Every non-empty document of a YAML stream; raises ``yaml.YAMLError`` on bad YAML."""
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]  # StrictLoader is a SafeLoader
