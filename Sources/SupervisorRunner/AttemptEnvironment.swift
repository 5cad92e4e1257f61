public import Foundation
public import SupervisorCore

/// The environment of a job's process (SPEC section 6): the supervisor's variables, HOME,
/// TMPDIR and XDG directories inside the work directory, PATH, LANG and the type's `env`
/// table, and nothing else of the supervisor's own environment (no tokens, no database URL).
public struct AttemptEnvironment: Sendable, Equatable {
    public var jobID: JobID
    public var jobType: String
    public var attempt: Int
    public var workDirectory: WorkDirectory
    public var artifactsDirectory: String
    public var payloadFile: String
    /// Only when the job has secrets.
    public var secretsFile: String?
    public var debugPort: Int
    /// Only for `browser = "chromium"` types.
    public var cdpURL: String?
    /// The type's `env` table.
    public var typeEnvironment: [String: String]
    /// The supervisor's own PATH, used when the type's `env` sets none.
    public var supervisorPath: String

    public init(
        jobID: JobID, jobType: String, attempt: Int, workDirectory: WorkDirectory, artifactsDirectory: String,
        payloadFile: String, secretsFile: String? = nil, debugPort: Int, cdpURL: String? = nil,
        typeEnvironment: [String: String] = [:], supervisorPath: String
    ) {
        self.jobID = jobID
        self.jobType = jobType
        self.attempt = attempt
        self.workDirectory = workDirectory
        self.artifactsDirectory = artifactsDirectory
        self.payloadFile = payloadFile
        self.secretsFile = secretsFile
        self.debugPort = debugPort
        self.cdpURL = cdpURL
        self.typeEnvironment = typeEnvironment
        self.supervisorPath = supervisorPath
    }

    /// The variables, as the job will see them. The supervisor's own win over the type's
    /// table, so a config cannot point a job at another attempt's directories.
    public var variables: [String: String] {
        var variables = typeEnvironment
        if variables["PATH"] == nil { variables["PATH"] = supervisorPath }
        let work = workDirectory
        let own: [String: String] = [
            "SUPERVISOR_JOB_ID": jobID.rawValue,
            "SUPERVISOR_JOB_TYPE": jobType,
            "SUPERVISOR_ATTEMPT": String(attempt),
            "SUPERVISOR_WORK_DIR": work.root,
            "SUPERVISOR_USER_DATA_DIR": work.userData,
            "SUPERVISOR_DEBUG_PORT": String(debugPort),
            "SUPERVISOR_ARTIFACTS_DIR": artifactsDirectory,
            "SUPERVISOR_PAYLOAD_FILE": payloadFile,
            "HOME": work.home,
            "TMPDIR": work.temporary,
            "XDG_CONFIG_HOME": work.home + "/.config",
            "XDG_CACHE_HOME": work.home + "/.cache",
            "XDG_DATA_HOME": work.home + "/.local/share",
            "XDG_STATE_HOME": work.home + "/.local/state",
            "XDG_RUNTIME_DIR": work.temporary,
        ]
        variables.merge(own) { _, supervisor in supervisor }
        if let secretsFile { variables["SUPERVISOR_SECRETS_FILE"] = secretsFile }
        if let cdpURL { variables["SUPERVISOR_CDP_URL"] = cdpURL }
        return variables
    }
}
