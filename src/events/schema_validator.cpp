// valijson reports problems through throwRuntimeError(), which calls abort() unless
// this is set; a bad schema file must surface as an exception, not kill the process.
// Only this translation unit includes valijson, so the setting is consistent (ODR).
#define VALIJSON_USE_EXCEPTIONS 1

#include "events/schema_validator.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#ifndef TASKSTREAM_SCHEMA_DIR
#error "TASKSTREAM_SCHEMA_DIR must be defined by the build (see src/CMakeLists.txt)"
#endif

namespace taskstream::events {

struct SchemaValidator::Impl {
    valijson::Schema schema;
    // valijson::Validator::validate() is non-const because it caches compiled
    // `pattern` regexes; the mutex lets validate() be const and shareable while
    // keeping that cache (std::regex construction dominates the cost otherwise).
    std::mutex mutex;
    valijson::Validator validator{valijson::Validator::kStrongTypes};
};

namespace {

nlohmann::json load_json_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error(fmt::format("cannot open schema file {}", file.string()));
    }
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(fmt::format("schema file {} is not JSON: {}", file.string(), e.what()));
    }
}

void check_kind(std::string_view kind) {
    if (kind != "task-event" && kind != "task-update" && kind != "notification-request") {
        throw std::invalid_argument(fmt::format("unknown schema kind '{}'", kind));
    }
}

std::filesystem::path kind_dir(std::string_view kind) {
    return std::filesystem::path(TASKSTREAM_SCHEMA_DIR) / std::string(kind);
}

// N of a file named "v<N>.schema.json" (N a positive decimal without leading zeros), else 0.
int version_of(const std::string& name) {
    constexpr std::string_view suffix = ".schema.json";
    if (name.size() <= 1 + suffix.size() || name[0] != 'v' || !name.ends_with(suffix)) {
        return 0;
    }
    const std::string_view digits(name.data() + 1, name.size() - 1 - suffix.size());
    if (digits.empty() || digits[0] == '0') {
        return 0;
    }
    int version = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
    return error == std::errc() && end == digits.data() + digits.size() ? version : 0;
}

// valijson's context is {"<root>", "[task_id]", "[1]", ...}; join it into one path.
std::string context_path(const std::vector<std::string>& context) {
    std::string path;
    for (const auto& part : context) {
        path += part;
    }
    return path;
}

}  // namespace

SchemaValidator::SchemaValidator(const std::filesystem::path& schema_file)
    : schema_file_(schema_file), impl_(std::make_unique<Impl>()) {
    const auto document = load_json_file(schema_file);
    try {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        const valijson::adapters::NlohmannJsonAdapter adapter(document);
        parser.populateSchema(adapter, impl_->schema);
    } catch (const std::exception& e) {
        throw std::runtime_error(
            fmt::format("schema file {} is not a usable JSON Schema: {}", schema_file.string(), e.what()));
    }
}

SchemaValidator::~SchemaValidator() = default;
SchemaValidator::SchemaValidator(SchemaValidator&&) noexcept = default;
SchemaValidator& SchemaValidator::operator=(SchemaValidator&&) noexcept = default;

int SchemaValidator::latest_version(std::string_view kind) {
    check_kind(kind);
    const auto dir = kind_dir(kind);
    int latest = 0;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
        if (entry.is_regular_file(error)) {
            latest = std::max(latest, version_of(entry.path().filename().string()));
        }
    }
    if (latest == 0) {
        throw std::runtime_error(fmt::format("no schema version v<N>.schema.json in {}", dir.string()));
    }
    return latest;
}

SchemaValidator SchemaValidator::for_version(std::string_view kind, int version) {
    check_kind(kind);
    if (version < 1) {
        throw std::invalid_argument(fmt::format("schema version {} of '{}': versions start at 1", version, kind));
    }
    return SchemaValidator(kind_dir(kind) / fmt::format("v{}.schema.json", version));
}

SchemaValidator SchemaValidator::for_topic_kind(std::string_view kind) {
    return for_version(kind, latest_version(kind));
}

std::vector<std::string> SchemaValidator::validate(const nlohmann::json& document) const {
    const valijson::adapters::NlohmannJsonAdapter target(document);
    valijson::ValidationResults results;
    {
        const std::lock_guard lock(impl_->mutex);
        impl_->validator.validate(impl_->schema, target, &results);
    }
    std::vector<std::string> errors;
    errors.reserve(results.numErrors());
    valijson::ValidationResults::Error error;
    while (results.popError(error)) {
        errors.push_back(fmt::format("{}: {}", context_path(error.context), error.description));
    }
    return errors;
}

}  // namespace taskstream::events
