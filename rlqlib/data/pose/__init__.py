"""Coarse pose classes for CAP (RLQ §3.2, Fig. 5; docs/spec.md §5): COCO-17 keypoints → pose vector → K-means.

The pipeline has three steps, each a plain function in its own module:

1. **Keypoint sources** (:mod:`~rlqlib.data.pose.keypoints`), one interface: a ``Keypoints`` (file name →
   ``(17, 3)`` x, y, score array or ``None`` for "no person", plus each image's ``(W, H)``). ``read_alphapose``
   reads AlphaPose results JSON (the highest-``score`` person per image, as the reference keeps the highest
   detection score); ``read_synthcc_keypoints`` reads SynthCC's ground truth (the same format); the optional
   MediaPipe estimator (:mod:`~rlqlib.data.pose.mediapipe`, own environment, run by
   :func:`~rlqlib.data.pose.estimate.run_mediapipe`) writes that format too. The authors' ready-made labels
   (``LTCC_Pose_Cluster.csv``) are read as labels directly with :func:`rlqlib.data.annotations.read_pose_cluster_csv`;
   :func:`rlqlib.data.annotations.write_pose_csv` writes the same format.
2. **Vectors** (:mod:`~rlqlib.data.pose.vectors`): integer keypoints mapped onto the 192×384 canvas and truncated
   again, then length and angle of the reference's 13 body lines: ``R_LA`` (26-d, the reference's choice),
   ``R_LAC`` (+34 canvas coordinates) or ``R_A`` (angles only). ``PoseEncoder`` leaves them raw (the reference) or,
   as the improved option, standardises lengths/coordinates and writes each angle as (sin, cos), so that a ±180°
   wrap (e.g. the shoulder line of a back view) does not split one pose into two clusters.
3. **Clustering** (:mod:`~rlqlib.data.pose.clusters`): K-means fitted on the train split, labels 1…k, 0 = no
   usable pose; with the analysis helpers ``cluster_medoids``, ``purity`` and ``sweep_k`` for the book.

:mod:`~rlqlib.data.pose.config` holds :class:`~rlqlib.data.pose.config.PoseConfig`;
:mod:`~rlqlib.data.pose.labels` turns a keypoint file into the reference's label CSV (``rlq poses cluster``).
The Fig. 5 figure is :func:`rlqlib.book.plots.pose_cluster_grid`.

This ``__init__`` imports nothing: ``python -m rlqlib.data.pose.mediapipe`` runs in the separate pose environment,
which has neither torch nor pandas nor scikit-learn.
"""
