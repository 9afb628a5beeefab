"""The shipped model zoo: the catalogue (torch-free lookup) and its build recipes. Import submodules directly."""
