// A 3x5 pixel font for labels in PNG pictures written without a plotting library (`oodkit explain`):
// digits, letters (lower case drawn as upper case) and + - . , : = ( ) _ / % # [ ] < > and space;
// any other character is drawn as a small box.
#pragma once
#include <cstdint>
#include <string>

#include "framework/tensor.h"

namespace oodkit::run {

constexpr int kGlyphW = 3, kGlyphH = 5;

// Width in pixels of `text` at magnification `scale` (a 1-pixel gap after each glyph, scaled).
int64_t text_width(const std::string& text, int scale);

// Draws `text` into an RGB uint8 image [3, H, W] with its top-left corner at (y, x), each font pixel
// a scale x scale square of colour rgb; pixels outside the image are skipped.
void draw_text(Tensor& image, int64_t y, int64_t x, const std::string& text, int scale, const uint8_t rgb[3]);

}  // namespace oodkit::run
