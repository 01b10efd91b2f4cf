#include "trnsim/support/status.h"

namespace trnsim {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kParse: return "parse error";
    case ErrorCode::kConfig: return "config error";
    case ErrorCode::kVerify: return "verification error";
    case ErrorCode::kCapacity: return "capacity error";
    case ErrorCode::kUninitializedRead: return "uninitialized read";
    case ErrorCode::kOutOfBounds: return "out of bounds";
    case ErrorCode::kIo: return "I/O error";
    case ErrorCode::kCorrupt: return "corrupt input";
    case ErrorCode::kUnsupported: return "not supported yet";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown";
}

Status Status::withContext(std::string_view outer) const {
  if (isOk()) return *this;
  std::string where(outer);
  if (!where_.empty()) {
    where += ": ";
    where += where_;
  }
  return {code_, message_, std::move(where)};
}

std::string Status::toString() const {
  if (isOk()) return "ok";
  if (where_.empty()) return message_;
  return where_ + ": " + message_;
}

}  // namespace trnsim
