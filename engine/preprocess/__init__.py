"""Face preprocessing: MTCNN square crop, background to white, 68 dlib landmarks, and the face cache.

Use ``preprocess_image`` for one image in memory and ``preprocess_table`` for a sample table (cached,
on several processes); training reads crops with ``load_faces``. Nothing here imports TensorFlow until
a detector is created.
"""

from engine.preprocess.batch import FaceWorkers, PreprocessStats, load_face_record, load_faces, preprocess_table
from engine.preprocess.pipeline import (
    FaceResult,
    NoFace,
    PreprocessParams,
    decode_image,
    params_from_section,
    preprocess_image,
)

__all__ = [
    "FaceResult",
    "FaceWorkers",
    "NoFace",
    "PreprocessParams",
    "PreprocessStats",
    "decode_image",
    "load_face_record",
    "load_faces",
    "params_from_section",
    "preprocess_image",
    "preprocess_table",
]
