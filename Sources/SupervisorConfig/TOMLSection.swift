import SupervisorCore
import TOMLKit

/// Typed, key-naming access to one TOML table. Every key must be one the section
/// knows; a key SPEC.md names but this build does not implement yet is refused as such,
/// never accepted and ignored.
struct TOMLSection {
    let table: TOMLTable
    /// Dotted path of this table, e.g. `server`.
    let path: String

    init(_ table: TOMLTable, path: String, known: Set<String>, notYetSupported: Set<String> = []) throws {
        self.table = table
        self.path = path
        for key in table.keys.sorted() {
            if notYetSupported.contains(key) {
                throw ConfigurationError(key: keyPath(key), message: "is not supported yet by this version of supervisor")
            }
            guard known.contains(key) else {
                throw ConfigurationError(key: keyPath(key), message: "unknown key")
            }
        }
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func contains(_ key: String) -> Bool { table.contains(key: key) }

    func string(_ key: String) throws -> String? {
        guard let value = table[key] else { return nil }
        guard let text = value.string, value.type == .string else { throw mistyped(key, expected: "a string") }
        return text
    }

    func boolean(_ key: String) throws -> Bool? {
        guard let value = table[key] else { return nil }
        guard value.type == .bool, let flag = value.bool else { throw mistyped(key, expected: "true or false") }
        return flag
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = table[key] else { return nil }
        guard value.type == .int, let number = value.int else { throw mistyped(key, expected: "an integer") }
        guard range.contains(number) else {
            throw ConfigurationError(key: keyPath(key), message: "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
        }
        return number
    }

    func duration(_ key: String) throws -> Duration? {
        guard let text = try string(key) else { return nil }
        do {
            return try DurationText.parse(text)
        } catch {
            throw ConfigurationError(key: keyPath(key), message: error.description)
        }
    }

    /// An integer number of bytes, or a string such as `"10M"`.
    func size(_ key: String) throws -> Int64? {
        guard let value = table[key] else { return nil }
        if value.type == .int, let number = value.int {
            guard number >= 0 else { throw ConfigurationError(key: keyPath(key), message: "must not be negative") }
            return Int64(number)
        }
        guard let text = try string(key) else { return nil }
        do {
            return try ByteSizeText.parse(text)
        } catch {
            throw ConfigurationError(key: keyPath(key), message: error.description)
        }
    }

    func stringArray(_ key: String) throws -> [String]? {
        guard let value = table[key] else { return nil }
        guard value.type == .array, let array = value.array else { throw mistyped(key, expected: "an array of strings") }
        return try array.map { element in
            guard element.type == .string, let text = element.string else {
                throw mistyped(key, expected: "an array of strings")
            }
            return text
        }
    }

    func integerArray(_ key: String, in range: ClosedRange<Int>) throws -> [Int]? {
        guard let value = table[key] else { return nil }
        guard value.type == .array, let array = value.array else { throw mistyped(key, expected: "an array of integers") }
        return try array.map { element in
            guard element.type == .int, let number = element.int else { throw mistyped(key, expected: "an array of integers") }
            guard range.contains(number) else {
                throw ConfigurationError(key: keyPath(key), message: "holds \(number); each must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return number
        }
    }

    /// A table whose values are all strings, such as `env = { LANG = "C.UTF-8" }`.
    func stringTable(_ key: String) throws -> [String: String]? {
        guard let value = table[key] else { return nil }
        guard value.type == .table, let inner = value.table else { throw mistyped(key, expected: "a table of strings") }
        var strings: [String: String] = [:]
        for name in inner.keys {
            guard let element = inner[name], element.type == .string, let text = element.string else {
                throw ConfigurationError(key: keyPath(key) + ".\(name)", message: "must be a string")
            }
            strings[name] = text
        }
        return strings
    }

    func section(_ key: String, known: Set<String>, notYetSupported: Set<String> = []) throws -> TOMLSection? {
        guard let value = table[key] else { return nil }
        guard value.type == .table, let table = value.table else { throw mistyped(key, expected: "a table") }
        return try TOMLSection(table, path: keyPath(key), known: known, notYetSupported: notYetSupported)
    }

    func tableArray(_ key: String) throws -> [TOMLTable]? {
        guard let value = table[key] else { return nil }
        guard value.type == .array, let array = value.array else { throw mistyped(key, expected: "an array of tables ([[\(keyPath(key))]])") }
        return try array.map { element in
            guard element.type == .table, let table = element.table else {
                throw mistyped(key, expected: "an array of tables ([[\(keyPath(key))]])")
            }
            return table
        }
    }

    func oneOf<Choice: RawRepresentable & CaseIterable>(_ key: String, _: Choice.Type) throws -> Choice?
    where Choice.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            let allowed = Choice.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw ConfigurationError(key: keyPath(key), message: "must be one of \(allowed), not \"\(text)\"")
        }
        return choice
    }

    private func mistyped(_ key: String, expected: String) -> ConfigurationError {
        let found = table[key].map { "\($0.type)" } ?? "nothing"
        return ConfigurationError(key: keyPath(key), message: "must be \(expected), not a \(found)")
    }
}
