"""Pure torch modules, one family per file, behind a registry.

Importing this package registers every family, in the order ``list_nets()`` reports.
"""

# The family imports register the nets; their order is list_nets()'s order.
# isort: off
from aestudio.nets import dense_ae as _dense_ae  # noqa: F401
from aestudio.nets import conv_ae as _conv_ae  # noqa: F401
from aestudio.nets import denoising_ae as _denoising_ae  # noqa: F401
from aestudio.nets import sparse_ae as _sparse_ae  # noqa: F401
from aestudio.nets import contractive_ae as _contractive_ae  # noqa: F401
from aestudio.nets import vae as _vae  # noqa: F401
from aestudio.nets import unet as _unet  # noqa: F401

# isort: on
from aestudio.nets.registry import (  # noqa: F401
    NetSpec,
    UnknownNetError,
    build_net,
    default_config,
    get_spec,
    list_nets,
    net_config_from_dict,
    net_config_to_dict,
    register_net,
    size_multiple,
)
