"""Measures of a fit's images and materials, below the fit: image metrics
(PSNR, SSIM, masked PSNR, erosion, scaled albedo, angle errors:
``metrics``) and the comparison with the built-in generator's ground truth
(``ground_truth``: maps, appearance, relighting, new views, shape)."""
