"""Attribution methods: where in the image the model is sensitive, one method per file (after Captum).

====================  =============================  ===========  ============================================
method                paper                          code         why
====================  =============================  ===========  ============================================
saliency              Simonyan et al. 2014           ours         one batched autograd.grad; = Captum Saliency
signed_gradient       Simonyan et al. 2014           ours         = Captum Saliency(abs=False)
gradient_x_input      Shrikumar et al. 2016          ours         = Captum InputXGradient
smoothgrad            Smilkov et al. 2017            ours         seeded Generator noise, batched copies
integrated_gradients  Sundararajan et al. 2017       ours         chunked, baselines, exact trapezoid weights
gradcam               Selvaraju et al. 2017          ours         no lasting hooks, own thread only, ReLU on
occlusion             Zeiler & Fergus 2014           ours         all windows batched under inference_mode
====================  =============================  ===========  ============================================

Captum 0.9.0 (pinned) is the oracle in tests/attributions: every method above is checked against it on the
same inputs. See README.md in this folder for the reasons in full.
"""

from explorer.attributions._common import ProgressFn
from explorer.attributions.api import METHODS, AttributionConfig, MethodInfo, attribute
from explorer.attributions.display import alignment, sign_agreement, to_display
from explorer.attributions.gradcam import GradCamResult, candidate_layers, default_layer, gradcam
from explorer.attributions.gradient_x_input import gradient_x_input
from explorer.attributions.integrated_gradients import BASELINES, RULES, integrated_gradients, make_baseline
from explorer.attributions.occlusion import occlusion
from explorer.attributions.saliency import gradient, saliency, signed_gradient
from explorer.attributions.smoothgrad import smoothgrad, smoothgrad_noise

__all__ = [
    "BASELINES", "METHODS", "RULES", "AttributionConfig", "GradCamResult", "MethodInfo", "ProgressFn",
    "alignment", "attribute", "candidate_layers", "default_layer", "gradcam", "gradient", "gradient_x_input",
    "integrated_gradients", "make_baseline", "occlusion", "saliency", "sign_agreement", "signed_gradient",
    "smoothgrad", "smoothgrad_noise", "to_display",
]
