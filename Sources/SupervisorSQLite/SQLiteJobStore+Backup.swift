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

    /// Writes a consistent copy of the store to a new file at `path` with SQLite's online
    /// backup, from one read transaction: the copy is the store as of its start, while
    /// submits and claims go on. The copy is written beside `path` and renamed into place,
    /// so `path` is either complete or absent.
    ///
    /// - Parameter progress: pages copied and pages in all, after each step.
    public func backup(to path: String, progress: @escaping @Sendable (_ copied: Int, _ total: Int) -> Void = { _, _ in })
        async throws
    {
        try checkOpen()
        guard !FileManager.default.fileExists(atPath: path) else { throw BackupError.exists(path) }
        let partial = path + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let destination = try DatabaseQueue(path: partial)
            try pool.backup(to: destination, pagesPerStep: 256) { step in
                progress(step.completedPageCount, step.totalPageCount)
            }
            try destination.close()
            guard rename(partial, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }
}
