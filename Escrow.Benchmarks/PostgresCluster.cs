using System.Net.Sockets;

namespace Escrow.Benchmarks;

/// <summary>
/// The PostgreSQL under test: a private cluster in a fresh temp directory on a free port (the approach of
/// Escrow.Tests' PostgresServer: initdb, pg_ctl, as the postgres system user when we are root), with default
/// durability (fsync=on, synchronous_commit=on) and pg_stat_statements loaded; or a server given by --connection.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private const int MajorVersionMin = 15;
    private readonly string? _bin;
    private readonly string? _data;
    private readonly string? _root;

    private PostgresCluster(NpgsqlConnectionStringBuilder admin, string? bin, string? data, string? root)
    {
        Admin = admin;
        _bin = bin;
        _data = data;
        _root = root;
    }

    public static bool AsRoot { get; } = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);

    /// <summary>Connection to the maintenance database; also the user and password pgbench uses.</summary>
    public NpgsqlConnectionStringBuilder Admin { get; }

    public bool Private => _data is not null;

    public string Describe => Private ? $"private cluster {_data} on 127.0.0.1:{Admin.Port}" : $"given server {Admin.Host}:{Admin.Port}";

    public string BinDirectory => _bin ?? FindBinDirectory();

    /// <summary>The postmaster's pid (private cluster only): its tree is the PostgreSQL CPU.</summary>
    public int? PostmasterPid
    {
        get
        {
            if (_data is null)
            {
                return null;
            }
            var first = File.ReadLines(Path.Combine(_data, "postmaster.pid")).FirstOrDefault();
            return int.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
    }

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder(Admin.ConnectionString) { Database = database }.ConnectionString;

    public static async Task<PostgresCluster> StartOrUseAsync(string? connection)
    {
        if (!string.IsNullOrWhiteSpace(connection))
        {
            var given = new NpgsqlConnectionStringBuilder(connection);
            await CheckAsync(given.ConnectionString);
            return new PostgresCluster(given, null, null, null);
        }
        var bin = FindBinDirectory();
        var root = Path.Combine(Path.GetTempPath(), "escrow-bench-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var data = Path.Combine(root, "data");
        var log = Path.Combine(root, "server.log");
        Directory.CreateDirectory(root);
        if (AsRoot)
        {
            await Silo.ProcessRunner.RunAsync("chown", ["postgres:postgres", root], asPostgres: false, "chown of the benchmark cluster directory");
        }
        await Silo.ProcessRunner.RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], AsRoot, "initdb");
        var port = FreePort();
        var statements = File.Exists($"/usr/share/postgresql/{Path.GetFileName(Path.GetDirectoryName(bin))}/extension/pg_stat_statements.control");
        var options = string.Create(CultureInfo.InvariantCulture,
            $"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=on -c synchronous_commit=on -c max_connections=300 -c shared_buffers=512MB")
            + (statements ? " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top -c pg_stat_statements.max=5000" : "");
        var started = await Silo.ProcessRunner.RunAsync(Path.Combine(bin, "pg_ctl"), ["start", "-w", "-s", "-t", "60", "-D", data, "-l", log, "-o", options],
            AsRoot, "pg_ctl start", throwOnFailure: false, captureOutput: false);
        if (started != 0)
        {
            throw new InvalidOperationException($"pg_ctl start failed (exit {started}); server log {log}:\n{TryRead(log)}");
        }
        var admin = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = "postgres",
            Database = "postgres",
            IncludeErrorDetail = true,
            MaxPoolSize = 4,
        };
        var cluster = new PostgresCluster(admin, bin, data, root);
        await CheckAsync(admin.ConnectionString);
        return cluster;
    }

    public async Task<bool> TryEnableStatementsAsync()
    {
        try
        {
            await ExecuteAsync(Admin.ConnectionString, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            await ExecuteAsync(Admin.ConnectionString, "SELECT pg_stat_statements_reset()");
            return true;
        }
        catch (PostgresException)
        {
            return false;
        }
    }

    /// <summary>
    /// Where counters are read: the maintenance database, so that the benchmark's own queries are not commits of
    /// the service's database. With --connection, the given database when "postgres" cannot be opened.
    /// </summary>
    public async Task<string> StatsConnectionStringAsync()
    {
        var maintenance = ConnectionStringFor("postgres");
        try
        {
            await using var c = new NpgsqlConnection(maintenance);
            await c.OpenAsync();
            return maintenance;
        }
        catch (NpgsqlException)
        {
            Console.WriteLine("The postgres database cannot be opened: counters are read from the service's database (each read adds one commit).");
            return Admin.ConnectionString;
        }
    }

    /// <summary>A new database on a private cluster; the given database itself otherwise.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        if (!Private)
        {
            return Admin.ConnectionString;
        }
        await ExecuteAsync(Admin.ConnectionString, $"CREATE DATABASE {name}");
        return ConnectionStringFor(name);
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_data is null || _bin is null || _root is null)
        {
            return;
        }
        NpgsqlConnection.ClearAllPools();
        await Silo.ProcessRunner.RunAsync(Path.Combine(_bin, "pg_ctl"), ["stop", "-m", "fast", "-s", "-D", _data], AsRoot, "pg_ctl stop", throwOnFailure: false);
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static async Task CheckAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        if (connection.PostgreSqlVersion.Major < MajorVersionMin)
        {
            throw new InvalidOperationException($"PostgreSQL {connection.PostgreSqlVersion}: the schema needs {MajorVersionMin} or later.");
        }
    }

    public static string FindBinDirectory()
    {
        var configured = Environment.GetEnvironmentVariable("ESCROW_PG_BIN");
        if (!string.IsNullOrWhiteSpace(configured) && File.Exists(Path.Combine(configured, "pg_ctl")))
        {
            return configured;
        }
        const string Installed = "/usr/lib/postgresql";
        var found = Directory.Exists(Installed)
            ? Directory.GetDirectories(Installed)
                .Select(d => (Dir: Path.Combine(d, "bin"), Major: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(c => c.Major >= MajorVersionMin && File.Exists(Path.Combine(c.Dir, "initdb")) && File.Exists(Path.Combine(c.Dir, "pgbench")))
                .OrderBy(c => c.Major == MajorVersionMin ? 0 : 1).ThenByDescending(c => c.Major)
                .Select(c => c.Dir).FirstOrDefault()
            : null;
        return found ?? throw new InvalidOperationException(
            $"PostgreSQL {MajorVersionMin}+ binaries (initdb, pg_ctl, pgbench) not found under {Installed}/<version>/bin: install postgresql-15 or set ESCROW_PG_BIN.");
    }

    public static int FreePort()
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
            return e.Message;
        }
    }
}
