"""68 facial landmarks with dlib's ``shape_predictor_68_face_landmarks`` (shipped by face-recognition-models).

Points follow the iBUG 300-W order: 0-16 jaw, 17-26 eyebrows, 27-35 nose, 36-47 eyes, 48-67 mouth.
They are (x, y) pixel coordinates of the image the predictor ran on.
"""

from __future__ import annotations

import numpy as np

from engine.preprocess.detect import FaceBox

N_LANDMARKS = 68
JAW = slice(0, 17)


class LandmarkPredictor:
    """dlib's 68-point shape predictor, loaded once (the model file is ~100 MB): reuse one per process."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def predict(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        """(68, 2) float64 landmark coordinates in ``rgb``'s pixels, for the face inside ``face``."""
        image = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
        rect = self._dlib.rectangle(
            int(round(face.x1)), int(round(face.y1)), int(round(face.x2)), int(round(face.y2))
        )
        shape = self._predictor(image, rect)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(N_LANDMARKS)], dtype=np.float64)
