"""Images for the explorer: decoding uploads, the offline sample gallery, preprocessing to a model's input.

Pure library (no streamlit)::

    from explorer.images import decode_image, load_sample, to_model_input, DEFAULT_SAMPLE

    img = load_sample(DEFAULT_SAMPLE)                  # LoadedImage, original pixels for display
    x = to_model_input(img, model.input_shape)          # float32 C x H x W in [0, 1]
    up = decode_upload(uploaded.getvalue(), uploaded.name)  # raises ImageError (one line) on bad input
    images, problems = read_uploads([(f.name, f.getvalue()) for f in files])  # images and zips, bounded

See :mod:`explorer.images.decode`, :mod:`explorer.images.uploads` (limits, cache, zips),
:mod:`explorer.images.samples` and :mod:`explorer.images.preprocess`.
"""

from explorer.images.core import ImageError, LoadedImage
from explorer.images.decode import (
    ACCEPTED_FORMATS,
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    ImageInfo,
    decode_image,
    probe_image,
)
from explorer.images.preprocess import INVERT_CHOICES, to_model_input
from explorer.images.samples import (
    DEFAULT_SAMPLE,
    KINDS,
    Sample,
    SampleNotFound,
    is_dataset_sample,
    list_samples,
    load_sample,
)
from explorer.images.uploads import UPLOAD_TYPES, DecodedCache, UploadLimits, decode_upload, read_uploads

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_ASPECT",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_SAMPLE",
    "INVERT_CHOICES",
    "KINDS",
    "UPLOAD_TYPES",
    "DecodedCache",
    "ImageError",
    "ImageInfo",
    "LoadedImage",
    "Sample",
    "SampleNotFound",
    "UploadLimits",
    "decode_image",
    "decode_upload",
    "is_dataset_sample",
    "list_samples",
    "load_sample",
    "probe_image",
    "read_uploads",
    "to_model_input",
]
