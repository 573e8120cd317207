"""The choices of an export, importable without TensorFlow (the CLI builds its parser from them)."""

FORMATS = ("saved_model", "tflite")
# A streaming keyword spotter exports as TFLite, or as C source and header around those bytes (TFLite Micro).
STREAMING_FORMATS = ("tflite", "c")
# A streaming spotter exports as float32, or int8 calibrated on streams of training clips.
STREAMING_QUANTIZE_MODES = ("none", "int8")
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
INPUT_TYPES = ("float32", "int16")
# A speaker verifier's embedding model exports without calibration data, so without int8 activations.
VERIFIER_QUANTIZE_MODES = ("none", "float16", "dynamic")
