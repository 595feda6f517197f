#pragma once
// Training-time image augmentations ([data.augment]): which ones run and how strongly. Free of
// LibTorch, so the run configuration holds them; data/image.hpp applies them.
#include <string>
#include <utility>

#include <commercemm/core/error.hpp>
#include <commercemm/core/model_config.hpp>

namespace commercemm::data {

/// Geometry (torchvision's RandomResizedCrop and RandomHorizontalFlip), colour (ColorJitter
/// without hue, RandomGrayscale) and blur (GaussianBlur). Colour and blur are off by default;
/// other vendors' drawings of the same thing differ mostly in palette and line weight, which
/// they make the model ignore (README, "Ablations"). Pass none() (or call the overload without
/// one) for evaluation.
struct Augmentation {
  bool random_resized_crop = true;
  double min_area = 0.6;              ///< crop area as a fraction of the image, drawn in [min_area, max_area]
  double max_area = 1.0;
  double min_aspect = 3.0 / 4.0;      ///< crop width / height, drawn log-uniformly
  double max_aspect = 4.0 / 3.0;
  bool horizontal_flip = true;
  double flip_probability = 0.5;
  /// Colour jitter strengths in [0, 1]: each factor is drawn uniformly in [1 - s, 1 + s]
  /// (0 = off). Brightness scales the pixels, contrast blends them with the image's mean grey,
  /// saturation with each pixel's own grey (ITU-R 601 luma), in that order, clamped to [0, 1].
  double brightness = 0;
  double contrast = 0;
  double saturation = 0;
  double grayscale_probability = 0;   ///< then the whole image turned grey with this probability
  /// Then, with this probability (0 = off), a Gaussian blur whose sigma, in pixels of the
  /// model's input image, is drawn uniformly in [blur_sigma_min, blur_sigma_max] (torchvision's
  /// GaussianBlur defaults, as SimCLR and BYOL use it): line weight and fine strokes, which
  /// differ between vendors' drawings, stop telling products apart.
  double blur_probability = 0;
  double blur_sigma_min = 0.1;
  double blur_sigma_max = 2.0;

  static Augmentation none() { return {.random_resized_crop = false, .horizontal_flip = false}; }
};

template <class F> void visit_fields(Augmentation& a, F&& f) {
  f("random_resized_crop", a.random_resized_crop); f("min_area", a.min_area); f("max_area", a.max_area);
  f("min_aspect", a.min_aspect); f("max_aspect", a.max_aspect);
  f("horizontal_flip", a.horizontal_flip); f("flip_probability", a.flip_probability);
  f("brightness", a.brightness); f("contrast", a.contrast); f("saturation", a.saturation);
  f("grayscale_probability", a.grayscale_probability);
  f("blur_probability", a.blur_probability); f("blur_sigma_min", a.blur_sigma_min);
  f("blur_sigma_max", a.blur_sigma_max);
}

/// Ranges, and no knob of an augmentation that is switched off (it would do nothing).
/// `prefix` is where the table sits ("data.augment.").
inline void validate(const Augmentation& a, const Location& at, const std::string& prefix) {
  using commercemm::detail::require;
  require(a.min_area > 0 && a.min_area <= a.max_area && a.max_area <= 1, at, prefix + "min_area",
          "needs 0 < min_area <= max_area <= 1");
  require(a.min_aspect > 0 && a.min_aspect <= a.max_aspect, at, prefix + "min_aspect",
          "needs 0 < min_aspect <= max_aspect");
  const Augmentation defaults;
  const bool crop_knobs = a.min_area != defaults.min_area || a.max_area != defaults.max_area ||
                          a.min_aspect != defaults.min_aspect || a.max_aspect != defaults.max_aspect;
  require(a.random_resized_crop || !crop_knobs, at, prefix + "random_resized_crop",
          "is false, so min_area, max_area, min_aspect and max_aspect do nothing; leave them out");
  require(a.flip_probability >= 0 && a.flip_probability <= 1, at, prefix + "flip_probability", "must be in [0, 1]");
  require(a.horizontal_flip || a.flip_probability == defaults.flip_probability, at, prefix + "flip_probability",
          "does nothing while horizontal_flip is false; leave it out");
  for (const auto& [key, value] : {std::pair{"brightness", a.brightness}, std::pair{"contrast", a.contrast},
                                   std::pair{"saturation", a.saturation},
                                   std::pair{"grayscale_probability", a.grayscale_probability}})
    require(value >= 0 && value <= 1, at, prefix + key, "must be in [0, 1] (0 = off)");
  require(a.blur_probability >= 0 && a.blur_probability <= 1, at, prefix + "blur_probability",
          "must be in [0, 1] (0 = off)");
  require(a.blur_sigma_min > 0 && a.blur_sigma_min <= a.blur_sigma_max, at, prefix + "blur_sigma_min",
          "needs 0 < blur_sigma_min <= blur_sigma_max");
  require(a.blur_sigma_max <= 64, at, prefix + "blur_sigma_max", "must be at most 64 (pixels)");
  require(a.blur_probability > 0 ||
              (a.blur_sigma_min == defaults.blur_sigma_min && a.blur_sigma_max == defaults.blur_sigma_max),
          at, prefix + "blur_probability", "is 0, so blur_sigma_min and blur_sigma_max do nothing; leave them out");
}

}  // namespace commercemm::data
