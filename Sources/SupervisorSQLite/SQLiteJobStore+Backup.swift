public import Foundation
import GRDB

extension SQLiteJobStore {
    public enum BackupError: Error, CustomStringConvertible {
        case exists(String)

        public var description: String {
            switch self {
            case .exists(let path): "\(path) exists: a backup never overwrites a file; choose a new name or remove it"
            }
        }
    }

    /// Writes a consistent copy of the store file at `source` to a new file at `path` with
    /// SQLite's online backup, from one read transaction: the copy is the store as of its
    /// start, while submits and claims go on. The store is opened read-only, so a busy
    /// writer never makes the backup fail, and the copy is written beside `path` and
    /// renamed into place, so `path` is either complete or absent.
    ///
    /// - Parameter progress: pages copied and pages in all, after each step.
    public static func backup(
        storeAt source: String, to path: String, progress: @escaping @Sendable (_ copied: Int, _ total: Int) -> Void = { _, _ in }
    ) async throws {
        guard FileManager.default.fileExists(atPath: source) else { throw SQLiteStoreError.missing(source) }
        guard !FileManager.default.fileExists(atPath: path) else { throw BackupError.exists(path) }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let store = try DatabasePool(path: source, configuration: configuration)
        let partial = path + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let destination = try DatabaseQueue(path: partial)
            try store.backup(to: destination, pagesPerStep: 256) { step in
                progress(step.completedPageCount, step.totalPageCount)
            }
            try destination.close()
            try store.close()
            guard rename(partial, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }
}
