"""The kubectl battery: real kubectl 1.33 against pykube, compared with what a real 1.33 cluster prints."""
