using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Escrow.Tests.Infrastructure;

/// <summary>
/// One PostgreSQL server for the whole test run. <c>ESCROW_TEST_PG</c> (a connection string) points at an existing
/// server; otherwise a private cluster is initialised in a fresh temp directory on a free port, and stopped when
/// the test process exits. A fresh directory and port per run mean a crashed run never blocks the next one.
/// </summary>
public sealed class PostgresServer
{
    private const string ConnectionStringVariable = "ESCROW_TEST_PG";
    private const string BinVariable = "ESCROW_PG_BIN";
    private const int MajorVersionMin = 15;
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<Task<PostgresServer>> Instance = new(StartAsync);
    private static int s_databaseCounter;

    private readonly NpgsqlConnectionStringBuilder _admin;

    private PostgresServer(NpgsqlConnectionStringBuilder admin) => _admin = admin;

    /// <summary>The connection string of the maintenance database (<c>postgres</c>) on the shared server.</summary>
    public string AdminConnectionString => _admin.ConnectionString;

    public static Task<PostgresServer> GetAsync() => Instance.Value;

    /// <summary>Creates a fresh database with the schema applied (<see cref="SchemaMigrator"/>); a new name on every call.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = DatabaseName(prefix);
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            // Identifiers cannot be parameters; the name is built from [a-z0-9_] only.
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await create.ExecuteNonQueryAsync();
        }

        var connectionString = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance);
        return connectionString;
    }

    private static string DatabaseName(string prefix)
    {
        var clean = new string([.. prefix.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')]);
        clean = clean.Length == 0 || !char.IsAsciiLetter(clean[0]) ? "t_" + clean : clean;
        var suffix = string.Create(CultureInfo.InvariantCulture,
            $"_{Interlocked.Increment(ref s_databaseCounter)}_{Guid.NewGuid().ToString("N")[..8]}");
        return (clean.Length + suffix.Length > 63 ? clean[..(63 - suffix.Length)] : clean) + suffix;
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable(ConnectionStringVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var builder = new NpgsqlConnectionStringBuilder(configured) { Database = "postgres" };
            await CheckReachableAsync(builder, $"the server in {ConnectionStringVariable}");
            return new PostgresServer(builder);
        }

        var bin = FindBinDirectory();
        var asRoot = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);
        RemoveStaleClusters();
        var root = Path.Combine(Path.GetTempPath(), "escrow-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var data = Path.Combine(root, "data");
        var log = Path.Combine(root, "server.log");
        Directory.CreateDirectory(root);
        if (asRoot)
        {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres system user.
            await RunAsync("chown", ["postgres:postgres", root], asUser: false, "chown of the test cluster directory to postgres");
        }

        await RunAsync(Path.Combine(bin, "initdb"),
            ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], asRoot, "initdb");

        var port = FreePort();
        var options = string.Create(CultureInfo.InvariantCulture,
            $"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=on -c max_connections=300");
        var started = await RunAsync(Path.Combine(bin, "pg_ctl"), ["start", "-w", "-s", "-t", "60", "-D", data, "-l", log, "-o", options],
            asRoot, "pg_ctl start", throwOnFailure: false);
        if (started != 0)
        {
            throw new InvalidOperationException(
                $"pg_ctl start failed (exit {started}) for the test cluster in {data} on port {port}. Server log:\n{TryRead(log)}");
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(bin, data, root, asRoot);

        var admin = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = "postgres",
            Database = "postgres",
            IncludeErrorDetail = true,
        };
        await CheckReachableAsync(admin, $"the test cluster started in {data}");
        return new PostgresServer(admin);
    }

    private static void Stop(string bin, string data, string root, bool asRoot)
    {
        try
        {
            RunAsync(Path.Combine(bin, "pg_ctl"), ["stop", "-m", "fast", "-s", "-D", data], asRoot, "pg_ctl stop", throwOnFailure: false)
                .GetAwaiter().GetResult();
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // The directory is in the temp folder and uniquely named; a leftover never blocks a later run.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Deletes directories of earlier runs whose server is gone (no postmaster.pid) and which are over an hour old,
    /// so that another run starting right now on the same machine is never touched.
    /// </summary>
    private static void RemoveStaleClusters()
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), "escrow-pg-*"))
        {
            try
            {
                if (!File.Exists(Path.Combine(dir, "data", "postmaster.pid"))
                    && Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddHours(-1))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static string FindBinDirectory()
    {
        var configured = Environment.GetEnvironmentVariable(BinVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return File.Exists(Path.Combine(configured, "initdb"))
                ? configured
                : throw new InvalidOperationException($"{BinVariable}={configured} has no initdb; point it at a PostgreSQL {MajorVersionMin}+ bin directory.");
        }

        const string Installed = "/usr/lib/postgresql";
        var candidates = Directory.Exists(Installed)
            ? Directory.GetDirectories(Installed)
                .Select(d => (Dir: Path.Combine(d, "bin"), Major: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(c => c.Major >= MajorVersionMin && File.Exists(Path.Combine(c.Dir, "initdb")))
                .OrderBy(c => c.Major == MajorVersionMin ? 0 : 1).ThenByDescending(c => c.Major)
                .Select(c => c.Dir)
            : [];
        return candidates.FirstOrDefault() ?? throw new InvalidOperationException(
            $"initdb not found under {Installed}/<version>/bin (version {MajorVersionMin} or later); install postgresql-15 " +
            $"(apt-get install -y postgresql-15), set {BinVariable} to its bin directory, or set {ConnectionStringVariable} to a connection string.");
    }

    private static async Task<int> RunAsync(string file, IReadOnlyList<string> args, bool asUser, string what, bool throwOnFailure = true)
    {
        var info = new ProcessStartInfo(asUser ? "runuser" : file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = throwOnFailure,
            RedirectStandardError = throwOnFailure,
        };
        if (asUser)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                info.ArgumentList.Add(a);
            }
        }
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{what}: could not start {info.FileName}.");
        process.StandardInput.Close();
        // Output is read only for short-lived tools: pg_ctl's server would keep the pipes open.
        var stdout = throwOnFailure ? process.StandardOutput.ReadToEndAsync() : Task.FromResult("");
        var stderr = throwOnFailure ? process.StandardError.ReadToEndAsync() : Task.FromResult("");
        using var timeout = new CancellationTokenSource(ProcessTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{what} did not finish within {ProcessTimeout.TotalSeconds} s.");
        }
        if (throwOnFailure && process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{what} failed (exit {process.ExitCode}): {info.FileName} {string.Join(' ', info.ArgumentList)}\n{await stdout}{await stderr}");
        }
        return process.ExitCode;
    }

    private static async Task CheckReachableAsync(NpgsqlConnectionStringBuilder builder, string what)
    {
        try
        {
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync();
            if (connection.PostgreSqlVersion.Major < MajorVersionMin)
            {
                throw new InvalidOperationException(
                    $"{what} is PostgreSQL {connection.PostgreSqlVersion}; the schema needs {MajorVersionMin} or later (UNIQUE NULLS NOT DISTINCT).");
            }
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException($"Could not connect to {what} ({builder.Host}:{builder.Port}): {e.Message}", e);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
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

    /// <summary>A free loopback TCP port, for silos in tests.</summary>
    public static int GetFreePort() => FreePort();
}
