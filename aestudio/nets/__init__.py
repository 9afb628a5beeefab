"""Pure torch modules, one family per file, behind a registry."""

from aestudio.nets.registry import (  # noqa: F401
    NetSpec,
    build_net,
    default_config,
    get_spec,
    list_nets,
    net_config_from_dict,
    net_config_to_dict,
    register_net,
)
