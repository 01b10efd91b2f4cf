#pragma once
// The binary program format: versioned, checksummed, and loaded without trusting any field.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "trnsim/isa/instruction.h"
#include "trnsim/support/status.h"

namespace trnsim::isa {

/// Version 2 added the collective opcodes and the 'RGRP' section (replica groups); version 1
/// files (no collectives) still load.
inline constexpr uint32_t kBinaryFormatVersion = 2;
/// The oldest version decodeProgram reads.
inline constexpr uint32_t kOldestBinaryFormatVersion = 1;

std::vector<uint8_t> encodeProgram(const Program& program);
/// The checksum the header holds for `payload` (the bytes after the 32-byte header): FNV-1a 64.
uint64_t payloadChecksum(std::span<const uint8_t> payload);
/// Decodes a binary program; any bad magic, version, length, checksum, enum value or index
/// gives a kCorrupt error naming `origin` and the byte offset.
Expected<Program> decodeProgram(std::span<const uint8_t> bytes, const std::string& origin);

/// Reads a program file in either form (binary if it starts with the magic, else text).
Expected<Program> loadProgramFile(const std::string& path);
/// Writes text when the path ends in ".tsim"/".txt", binary otherwise.
Status saveProgramFile(const Program& program, const std::string& path);

}  // namespace trnsim::isa
