"""omz_quantizer: INT8 IRs from converted FP32 IRs with NNCF, their accuracy drop measured by
facezoo's own evaluator and bounded by the model's quantization.yml."""
