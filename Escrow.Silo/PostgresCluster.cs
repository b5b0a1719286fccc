using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Escrow.Silo;

/// <summary>
/// A private PostgreSQL cluster run from the installed server binaries: initialised in a directory on first use,
/// started on a loopback port, stopped on request. The tests' throw-away clusters and the API's local run (under
/// .escrow-data/) share it. PostgreSQL refuses to run as root, so as root every server command runs as the postgres
/// system user (runuser) and the cluster's directory is given to that user.
/// </summary>
public sealed class PostgresCluster
{
    public const string BinVariable = "ESCROW_PG_BIN";
    public const int MajorVersionMin = 15;
    private const string Installed = "/usr/lib/postgresql";
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    private readonly string _bin;
    private readonly bool _asRoot;
    private int _stopped;

    private PostgresCluster(string bin, string directory, int port, bool asRoot)
    {
        _bin = bin;
        Directory = directory;
        Port = port;
        _asRoot = asRoot;
    }

    /// <summary>The directory that holds the cluster (its data files are in data/, its log in server.log).</summary>
    public string Directory { get; }

    public int Port { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>
    /// The bin directory of PostgreSQL 15 or later: <c>ESCROW_PG_BIN</c>, else the newest-but-preferring-15 under
    /// /usr/lib/postgresql; null when none is installed.
    /// </summary>
    public static string? FindBinDirectory()
    {
        var configured = Environment.GetEnvironmentVariable(BinVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return File.Exists(Path.Combine(configured, "initdb")) ? configured : null;
        }
        return System.IO.Directory.Exists(Installed)
            ? System.IO.Directory.GetDirectories(Installed)
                .Select(d => (Dir: Path.Combine(d, "bin"), Major: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(c => c.Major >= MajorVersionMin && File.Exists(Path.Combine(c.Dir, "initdb")))
                .OrderBy(c => c.Major == MajorVersionMin ? 0 : 1).ThenByDescending(c => c.Major)
                .Select(c => c.Dir)
                .FirstOrDefault()
            : null;
    }

    public static string NotFoundMessage =>
        $"initdb not found under {Installed}/<version>/bin (version {MajorVersionMin} or later); install postgresql-15 " +
        $"(apt-get install -y postgresql-15) or set {BinVariable} to its bin directory.";

    /// <summary>
    /// Starts the cluster in <paramref name="directory"/> (initialising it if it has no data yet) on a free loopback
    /// port. A server of an earlier run that was killed before it could stop its cluster is stopped first.
    /// <paramref name="detached"/> puts the server in its own session, so a Ctrl+C in the terminal reaches only the
    /// host, which then stops the server after its own last writes.
    /// </summary>
    public static async Task<PostgresCluster> StartAsync(string bin, string directory, bool detached = false, string extraOptions = "")
    {
        var asRoot = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);
        System.IO.Directory.CreateDirectory(directory);
        var cluster = new PostgresCluster(bin, Path.GetFullPath(directory), FreeLoopbackPort(), asRoot);
        if (asRoot)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", cluster.Directory], asUser: false, "chown of the cluster directory to postgres");
        }
        if (!File.Exists(Path.Combine(cluster.DataDirectory, "PG_VERSION")))
        {
            await RunAsync(Path.Combine(bin, "initdb"),
                ["-D", cluster.DataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], asRoot, "initdb");
        }
        else if (File.Exists(Path.Combine(cluster.DataDirectory, "postmaster.pid")))
        {
            // Left running (or its pid file left behind) by a process that was killed: stop it, or clear the stale file.
            await RunAsync(Path.Combine(bin, "pg_ctl"), ["stop", "-m", "fast", "-s", "-D", cluster.DataDirectory], asRoot, "pg_ctl stop", throwOnFailure: false);
        }

        var log = Path.Combine(cluster.Directory, "server.log");
        // No Unix socket: clients use TCP on loopback, and a socket path under a deep working directory can exceed its length limit.
        var options = string.Create(CultureInfo.InvariantCulture,
            $"-c listen_addresses=127.0.0.1 -p {cluster.Port} -c unix_socket_directories='' -c fsync=on {extraOptions}");
        var pgCtl = Path.Combine(bin, "pg_ctl");
        IReadOnlyList<string> start = ["start", "-w", "-s", "-t", "60", "-D", cluster.DataDirectory, "-l", log, "-o", options];
        var started = detached
            ? await RunAsync("setsid", [pgCtl, .. start], asRoot, "pg_ctl start", throwOnFailure: false)
            : await RunAsync(pgCtl, start, asRoot, "pg_ctl start", throwOnFailure: false);
        if (started != 0)
        {
            throw new InvalidOperationException(
                $"pg_ctl start failed (exit {started}) for the cluster in {cluster.DataDirectory} on port {cluster.Port}. Server log:\n{TryReadTail(log)}");
        }
        return cluster;
    }

    /// <summary>Stops the server (fast shutdown: open transactions are rolled back, committed data is kept). Idempotent.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            RunAsync(Path.Combine(_bin, "pg_ctl"), ["stop", "-m", "fast", "-s", "-D", DataDirectory], _asRoot, "pg_ctl stop", throwOnFailure: false)
                .GetAwaiter().GetResult();
        }
    }

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // Output is captured only where a failure is reported: pg_ctl's server keeps the inherited pipes open.
    private static Task<int> RunAsync(string file, IReadOnlyList<string> args, bool asUser, string what, bool throwOnFailure = true) =>
        ProcessRunner.RunAsync(file, args, asUser, what, throwOnFailure, captureOutput: throwOnFailure, timeout: ProcessTimeout);

    private static string TryReadTail(string path)
    {
        try
        {
            var lines = File.ReadAllLines(path);
            return string.Join('\n', lines.TakeLast(30));
        }
        catch (IOException e)
        {
            return $"(log unreadable: {e.Message})";
        }
        catch (UnauthorizedAccessException e)
        {
            return $"(log unreadable: {e.Message})";
        }
    }
}
