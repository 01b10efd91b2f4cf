#pragma once
// The graph IR's text form: what the PyTorch front end sends, what --print-after shows and what
// the golden-file tests compare. docs/compiler.md gives the grammar:
//
//   graph forward(%x: f32[2, 64] input, %w: f32[64, 64] param) {
//     %y: f32[2, 64] = mm(%x, %w) @"model.py:12"
//     %z: f32[2, 64] = fused(%y, %x) {
//       %a: f32[2, 64] = add(%y, %x)
//       %z: f32[2, 64] = gelu(%a) {approximate="tanh"}
//     }
//     return %z
//   }

#include <string>
#include <string_view>

#include "trnsim/compiler/graph.h"
#include "trnsim/support/status.h"

namespace trnsim::compiler {

/// The graph as IR text (stable: the same graph always prints the same bytes).
std::string printGraph(const Graph& g);

/// Parses IR text. Values are checked for single definition and use after definition; types
/// are taken as written (the infer_shapes pass checks them against the op table). Errors are
/// kParse with "line L, column C" in the message.
Expected<Graph> parseGraph(std::string_view text);

}  // namespace trnsim::compiler
