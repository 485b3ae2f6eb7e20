"""Scene graphs for new images: a YOLOv8 detector trained on the dataset's boxes (design
analysis section 4, mode B; docs/detect.md).

- :mod:`.classes`: the 52 detector classes (4.3) and which scene-graph boxes become labels;
- :mod:`.dataset`: an index's scene-graph boxes as a YOLO dataset (``cxrbench detector-data``);
- :mod:`.offline`: the one place that imports ``ultralytics`` (optional extra ``detect``,
  AGPL-3.0), offline, with its settings in the run folder;
- :mod:`.train`: training from a model yaml or local weights (``cxrbench detector-train``);
- :mod:`.quality`: detector mAP with the project's functions beside ultralytics' own numbers;
- :mod:`.graphs`: detections as scene graphs in the release's format (``cxrbench
  scene-graph``) and :func:`~cxrbench.detect.graphs.detected_nodes` for the model.

Importing this package (or any module but the ones that call :func:`.offline.load_ultralytics`
at run time) never imports ultralytics.
"""
