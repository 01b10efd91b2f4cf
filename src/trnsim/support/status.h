#pragma once
// Errors as values: every fallible call in the core returns Status or Expected<T>.
// Exceptions appear only at the Python boundary and at the CLI's top level.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace trnsim {

/// Error categories; the Python front end maps each one to an exception class.
enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidArgument,    ///< a caller passed a value outside what the API accepts
  kParse,              ///< text (program, JSON) that does not parse
  kConfig,             ///< a chip/system config that is missing a key or has a bad value
  kVerify,             ///< an instruction that breaks a hardware rule
  kCapacity,           ///< SBUF/PSUM/HBM capacity exceeded or allocations overlap
  kUninitializedRead,  ///< an instruction read memory nothing wrote
  kOutOfBounds,        ///< an access outside its tensor or memory
  kIo,                 ///< a file that cannot be read or written
  kCorrupt,            ///< a binary file with a bad magic, version, checksum or length
  kUnsupported,        ///< valid input that trnsim does not implement yet
  kInternal,           ///< a trnsim bug
};

std::string_view errorCodeName(ErrorCode code);

/// The outcome of a fallible call: ok, or a code, a message the user can act on, and the
/// place it refers to (config file and key, instruction index and operand, kernel file:line).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, std::string where = {})
      : code_(code), message_(std::move(message)), where_(std::move(where)) {}

  static Status ok() { return {}; }
  bool isOk() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return isOk(); }

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& where() const { return where_; }

  /// Returns a copy whose place is `outer` followed by the current place (outermost first).
  Status withContext(std::string_view outer) const;
  /// "where: message" (or just the message when there is no place).
  std::string toString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string where_;
};

/// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Expected(Status status) : data_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool hasValue() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return hasValue(); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; only valid when !hasValue().
  const Status& status() const { return std::get<Status>(data_); }
  Status takeStatus() && { return std::get<Status>(std::move(data_)); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace trnsim

/// Returns early from the enclosing function when `expr` (a Status) is not ok.
#define TRNSIM_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::trnsim::Status trnsim_status_ = (expr);   \
    if (!trnsim_status_.isOk()) return trnsim_status_; \
  } while (0)

#define TRNSIM_CONCAT_INNER(a, b) a##b
#define TRNSIM_CONCAT(a, b) TRNSIM_CONCAT_INNER(a, b)
/// `TRNSIM_ASSIGN_OR_RETURN(auto x, f())`: unwraps an Expected or returns its Status.
#define TRNSIM_ASSIGN_OR_RETURN(decl, expr) \
  TRNSIM_ASSIGN_OR_RETURN_IMPL(TRNSIM_CONCAT(trnsim_expected_, __LINE__), decl, expr)
#define TRNSIM_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.hasValue()) return std::move(tmp).takeStatus(); \
  decl = std::move(tmp).value()
