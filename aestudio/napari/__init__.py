"""aestudio inside napari (``pip install aestudio[napari]``): a dock widget that runs any aestudio
model on an image layer, and a reader that opens a bundle, run or package with its sample.

The npe2 manifest is ``napari.yaml`` beside this file. The logic is Qt-free
(``_logic``); ``_widget`` is the only module that imports Qt (through napari's qtpy).
"""
