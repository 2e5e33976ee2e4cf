"""The study and its tooling, built on ncc's public API (ncc.compiler.compile
and bench): the sweep grid, its report and plots, the deadline-driven search,
architecture descent (NeuralScale profile search), training and evaluation,
the ONNX-to-torch model, and the zoo of the study's networks."""
