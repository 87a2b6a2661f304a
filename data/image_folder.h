// Image files and folders (decoded with stb_image: JPEG, PNG, BMP, TGA, PNM, GIF first frame)
// into uint8 [N, 3, H, W] datasets, with deterministic file order, optional labels from class
// sub-folders, resizing (area / bilinear / Pillow's bilinear) and center cropping.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace oodkit::data {

// ---------------------------------------------------------------- single images
// Decodes one image file to uint8 [3, H, W] RGB. Grayscale is replicated to R, G, B; an alpha
// channel is dropped (as PIL's convert("RGB") does); 16-bit PNGs are reduced to 8 bits.
// Errors name the file ("cannot open", "cannot decode '<path>': <stb reason>"); running out of
// host memory is an OutOfMemoryError naming the file and the image's size.
// Images with a zero side or over 2^26 pixels (8192 x 8192) are refused from their header, before
// any allocation.
Tensor decode_image(const std::string& path);

// Width and height from the file header only (no full decode); errors name the file.
struct ImageInfo {
  int64_t height = 0, width = 0, channels = 0;  // channels as stored (1 gray, 2 gray+alpha, 3, 4)
};
ImageInfo read_image_info(const std::string& path);

// Writes uint8 [3, H, W] (or [1, H, W] grayscale) as PNG / JPEG (quality 1..100).
void write_png(const std::string& path, const Tensor& image);
void write_jpeg(const std::string& path, const Tensor& image, int quality = 95);

// ---------------------------------------------------------------- resizing
// Area: exact box filter (each output pixel is the area-weighted mean of the source pixels its
//   footprint covers, fractional overlaps weighted by their length; for integer factors this is
//   the plain block mean, e.g. 2x2 -> 1x1 is the mean of the 4 pixels). Meant for downscaling.
// Bilinear: PyTorch's interpolate(mode="bilinear", align_corners=False, antialias=False): the
//   source coordinate of output x is (x + 0.5) * in / out - 0.5, clamped at 0, and the two
//   neighbouring pixels (the last one repeated at the border) are blended.
// Auto: per axis, Area where the axis shrinks (or keeps its size), Bilinear where it grows.
// The results of these three are rounded to the nearest integer (halves up) and clamped to [0, 255].
// PilBilinear: Pillow's BILINEAR resample, bit for bit: Image.resize((w, h), Image.BILINEAR) of an
//   "L" or "RGB" image (each channel alike), as torchvision's Resize does on PIL images
//   (torchvision's resize(..., antialias=True) on tensors approximates it in float). A triangle
//   filter (support 1) widened by the scale in / out when shrinking (antialiased; not widened when
//   growing), centred at (o + 0.5) * in / out, its weights normalised to sum 1 in double and then
//   turned into fixed point (22 fractional bits, rounded half away from zero); two passes, each
//   summing in integers and rounding to uint8 as Pillow does (+ half, shift, clamp to [0, 255]),
//   the second working on the first one's uint8 result: horizontal then vertical, except where the
//   height loses more than twice as many pixels as the width (H - height > 0 and
//   H - height > 2 * (W - width)): there vertical then horizontal, as Pillow 13 does (Pillow 12 and
//   older always went horizontal first; the two agree everywhere else, e.g. on every square to
//   square resize). An axis that keeps its size is left alone. Pillow's box / reducing_gap
//   arguments are not modelled (their defaults are). See data/image_folder.cpp (after Pillow's
//   src/libImaging/Resample.c) and tests/data/pil_resize_reference.py.
enum class ResizeMode { Auto, Area, Bilinear, PilBilinear };

// uint8 [3, H, W] or [N, 3, H, W] (any channel count) -> the same with spatial size (height, width).
Tensor resize_images(const Tensor& images, int64_t height, int64_t width, ResizeMode mode = ResizeMode::Auto);

// torchvision CenterCrop: top = round((H - height) / 2), left = round((W - width) / 2) with
// Python's round (halves to even). The crop must fit. [C, H, W] or [N, C, H, W] uint8.
Tensor center_crop(const Tensor& images, int64_t height, int64_t width);

// How a square target S x S is reached from an H x W image (image folders; LoadOptions::fit):
//  ShortSideCrop: torchvision's Resize(S) then CenterCrop(S), the OOD-benchmark convention: the
//    shorter side becomes S and the longer int(S * long / short) (truncated, as torchvision), then
//    the centre S x S is kept (center_crop's rounding).
//  Squash: both sides straight to S; the aspect ratio is not kept.
// A square image gives the same pixels either way (resize_images(image, S, S)).
enum class ImageFit { ShortSideCrop, Squash };

// "short-crop" | "squash"; anything else is an error that lists both.
ImageFit parse_image_fit(const std::string& name);
std::string image_fit_name(ImageFit fit);

// ---------------------------------------------------------------- folders
// Files of `dir` with an image extension (.png .jpg .jpeg .bmp .tga .ppm .pgm .pnm .gif, any
// case), sorted byte-wise by name (Python's sorted(), as torchvision does). Not recursive.
// Errors: missing/unreadable folder.
std::vector<std::string> list_image_files(const std::string& dir);

enum class FolderLabels {
  None,            // unlabelled: every image file directly in the folder (sub-folders ignored)
  FromSubfolders,  // one class per sub-folder (sorted names -> 0, 1, ...; names starting with '.'
                   // skipped), as torchvision's ImageFolder: images directly in the folder are
                   // ignored, a class folder without images is an error; class_names = folder names
  Auto,            // FromSubfolders when the folder has sub-folders holding images, else None
};

struct ImageFolderOptions {
  FolderLabels labels = FolderLabels::None;
  // Resize every image to (height, width) when both are > 0; otherwise keep the decoded size
  // (then all images must have the same size). resize_short > 0 instead scales the shorter
  // side to it keeping the aspect ratio (torchvision Resize(int): long = int(short' * long / short)).
  int64_t height = 0, width = 0;
  int64_t resize_short = 0;
  ResizeMode resize = ResizeMode::Auto;
  // After resizing, center-crop to (crop_height, crop_width) when both are > 0.
  int64_t crop_height = 0, crop_width = 0;
  // Read only the first `limit` files of the sorted list (all when < 0). With sub-folder labels
  // the limit applies to the whole sorted (class, file) list. Skipped files count towards it.
  int64_t limit = -1;
  // A file that cannot be read or decoded (UnreadableImageError) is left out and recorded in
  // Dataset::skipped (with its label, when labelled) instead of failing the load. Other errors
  // (a size mismatch, out of memory) still fail; a load that skips every file fails.
  bool skip_unreadable = false;
};

// Thrown by the folder loaders for a file that cannot be opened, read or decoded (the message
// names the file), so that callers can tell it from other errors.
class UnreadableImageError : public Error {
 public:
  using Error::Error;
};

// Sets the size fields of `o` (height/width, resize_short, crop) so that every image comes out
// size x size by `fit`; size <= 0 clears them (images keep their stored size). Other fields stay.
void set_square_size(ImageFolderOptions& o, int64_t size, ImageFit fit);

// Loads a folder (decoding in parallel; the result does not depend on the thread count).
// Errors name the folder when it holds no image files and the file that cannot be decoded
// (UnreadableImageError, unless skip_unreadable) or whose size differs from the first image's
// when no resize is requested.
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options = {},
                          const std::string& name = "");

// The same for an explicit list of files (kept in the given order), optionally with labels.
Dataset load_image_files(const std::vector<std::string>& files, const ImageFolderOptions& options = {},
                         const std::string& name = "", const std::vector<int64_t>& labels = {},
                         int64_t num_classes = 0);

// ---------------------------------------------------------------- Tiny ImageNet
// wnids.txt: one WordNet id per line (blank lines ignored, duplicates rejected).
std::vector<std::string> read_wnids(const std::string& path);

// For each file in `files` (matched by base name), the index in `wnids` of the wnid that
// `annotations_path` (val_annotations.txt: "<file>\t<wnid>\t<box...>" per line) gives it.
// Errors: a line without a tab, a wnid not in `wnids`, a duplicate file, a file without a line.
std::vector<int64_t> read_tiny_imagenet_val_labels(const std::string& annotations_path,
                                                   const std::vector<std::string>& wnids,
                                                   const std::vector<std::string>& files);

// The labelled validation split of a Tiny ImageNet folder `root`: images in root/val/images/
// (the official layout) or root/val/; annotations in root/val/val_annotations.txt or
// root/val_annotations.txt; classes in root/wnids.txt order (class_names = the wnids).
Dataset load_tiny_imagenet_val(const std::string& root, const ImageFolderOptions& options = {});

}  // namespace oodkit::data
