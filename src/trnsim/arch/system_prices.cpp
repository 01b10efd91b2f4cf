// loadPrices / parsePriceCatalog: configs/prices/<catalog>.json -> PriceCatalog.
// Format: {"schema_version": 1, "name": "...", "description": "...",
//          "usd_per_node_hour": {"<system name>": {"value": 21.5, "source": "..."}, ...}}

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "trnsim/arch/chip_schema.h"
#include "trnsim/arch/json_util.h"
#include "trnsim/arch/system_config.h"
#include "trnsim/arch/system_files.h"
#include "trnsim/support/json_load.h"

namespace trnsim::arch {
namespace {

using nlohmann::json;

Expected<PriceCatalog> parsePrices(std::string_view text, const std::string& origin) {
  TRNSIM_ASSIGN_OR_RETURN(json root, support::parseJsonText(text, origin));
  if (!root.is_object()) {
    return Status(ErrorCode::kConfig,
                  "expected a JSON object at the top level, got " + detail::shown(root), origin);
  }
  TRNSIM_RETURN_IF_ERROR(detail::checkSchemaVersion(root, kSystemSchemaVersion, origin));
  const std::vector<std::string> known = {"schema_version", "name", "description",
                                          "usd_per_node_hour"};
  for (const auto& [key, value] : root.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return detail::keyError(origin, key,
                              "unknown key" + detail::unknownKeyHint(key, "", known, root));
    }
  }
  PriceCatalog catalog;
  for (const char* key : {"name", "description"}) {
    auto it = root.find(key);
    if (it == root.end())
      return detail::keyError(origin, key, "missing; expected a non-empty string");
    if (!it->is_string() || detail::blank(it->get_ref<const std::string&>())) {
      return detail::keyError(origin, key,
                              "expected a non-empty string, got " + detail::shown(*it));
    }
  }
  catalog.name = root.at("name").get<std::string>();
  auto prices = root.find("usd_per_node_hour");
  if (prices == root.end() || !prices->is_object()) {
    return detail::keyError(
        origin, "usd_per_node_hour",
        std::string(prices == root.end() ? "missing; expected" : "expected") +
            " an object mapping system names to {\"value\": USD per node-hour, \"source\": "
            "\"...\"}" +
            (prices == root.end() ? std::string() : ", got " + detail::shown(*prices)));
  }
  for (const auto& [system, node] : prices->items()) {
    if (detail::blank(system)) {
      return detail::keyError(origin, "usd_per_node_hour." + system,
                              "a system name must not be empty");
    }
    const std::string path = "usd_per_node_hour." + system;
    detail::FieldSpec spec{path,  detail::FieldKind::kReal, 0, 1e6, true,
                           false, "USD per node-hour"};
    PriceEntry entry;
    TRNSIM_RETURN_IF_ERROR(
        detail::readValueObject(node, spec, &entry.usdPerNodeHour, origin, entry.source));
    catalog.bySystem[system] = std::move(entry);
  }
  return catalog;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Expected<PriceCatalog> parsePriceCatalog(std::string_view jsonText, const std::string& origin) {
  try {
    return parsePrices(jsonText, origin);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal,
                  std::string("unexpected failure while reading the price catalog: ") + e.what(),
                  origin);
  } catch (...) {
    return Status(ErrorCode::kInternal, "unexpected failure while reading the price catalog",
                  origin);
  }
}

std::vector<std::string> builtinPriceCatalogNames() {
  std::vector<std::string> names;
  for (const auto& [name, text] : detail::builtinPriceFiles()) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Expected<PriceCatalog> loadPrices(const std::string& nameOrPath) {
  for (const auto& [name, text] : detail::builtinPriceFiles()) {
    if (name == nameOrPath) {
      return parsePriceCatalog(text, fmt::format("<builtin>/prices/{}.json", name));
    }
  }
  if (endsWith(nameOrPath, ".json")) {
    TRNSIM_ASSIGN_OR_RETURN(std::string text, support::readJsonFile(nameOrPath));
    return parsePriceCatalog(text, nameOrPath);
  }
  std::string list;
  for (const std::string& n : builtinPriceCatalogNames()) list += (list.empty() ? "" : ", ") + n;
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("unknown price catalog '{}': built-in catalogs are {}; or give a path "
                            "to a .json price catalog",
                            nameOrPath, list));
}

}  // namespace trnsim::arch
