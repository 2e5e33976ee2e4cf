"""The Jetson AGX Xavier target (TensorRT 8.5): the target and its operator table."""
