using Escrow.Silo;

namespace Escrow.Benchmarks;

/// <summary>
/// The PostgreSQL under test: a private <see cref="PostgresCluster"/> in a fresh temp directory, with default
/// durability (fsync=on, synchronous_commit=on) and pg_stat_statements loaded; or a server given by --connection.
/// </summary>
public sealed class BenchPostgres : IAsyncDisposable
{
    private readonly PostgresCluster? _cluster;
    private readonly string? _bin;

    private BenchPostgres(NpgsqlConnectionStringBuilder admin, PostgresCluster? cluster, string? bin)
    {
        Admin = admin;
        _cluster = cluster;
        _bin = bin;
    }

    /// <summary>PostgreSQL's programs (pgbench) run as the postgres system user when we are root, as the cluster does.</summary>
    public static bool AsRoot { get; } = string.Equals(Environment.UserName, "root", StringComparison.Ordinal);

    /// <summary>Connection to the maintenance database; also the user and password pgbench uses.</summary>
    public NpgsqlConnectionStringBuilder Admin { get; }

    public bool Private => _cluster is not null;

    public string Describe => _cluster is { } c ? $"private cluster {c.DataDirectory} on 127.0.0.1:{c.Port}" : $"given server {Admin.Host}:{Admin.Port}";

    public string BinDirectory => _bin ?? FindBinDirectory();

    /// <summary>The postmaster's pid (private cluster only): its tree is the PostgreSQL CPU.</summary>
    public int? PostmasterPid =>
        _cluster is { } c && int.TryParse(File.ReadLines(Path.Combine(c.DataDirectory, "postmaster.pid")).FirstOrDefault(),
            NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : null;

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder(Admin.ConnectionString) { Database = database }.ConnectionString;

    public static async Task<BenchPostgres> StartOrUseAsync(string? connection)
    {
        if (!string.IsNullOrWhiteSpace(connection))
        {
            var given = new NpgsqlConnectionStringBuilder(connection);
            await CheckAsync(given.ConnectionString);
            return new BenchPostgres(given, null, null);
        }
        var bin = FindBinDirectory();
        var statements = File.Exists($"/usr/share/postgresql/{Path.GetFileName(Path.GetDirectoryName(bin))}/extension/pg_stat_statements.control");
        var options = "-c synchronous_commit=on -c max_connections=300 -c shared_buffers=512MB"
            + (statements ? " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top -c pg_stat_statements.max=5000" : "");
        var root = Path.Combine(Path.GetTempPath(), "escrow-bench-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var cluster = await PostgresCluster.StartAsync(bin, root, extraOptions: options);
        var admin = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = cluster.Port,
            Username = "postgres",
            Database = "postgres",
            IncludeErrorDetail = true,
            MaxPoolSize = 4,
        };
        await CheckAsync(admin.ConnectionString);
        return new BenchPostgres(admin, cluster, bin);
    }

    public async Task<bool> TryEnableStatementsAsync()
    {
        try
        {
            await Sql.ExecuteAsync(Admin.ConnectionString, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            await Sql.ExecuteAsync(Admin.ConnectionString, "SELECT pg_stat_statements_reset()");
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
        await Sql.ExecuteAsync(Admin.ConnectionString, $"CREATE DATABASE {name}");
        return ConnectionStringFor(name);
    }

    public ValueTask DisposeAsync()
    {
        if (_cluster is null)
        {
            return ValueTask.CompletedTask;
        }
        NpgsqlConnection.ClearAllPools();
        _cluster.Stop();
        try
        {
            Directory.Delete(_cluster.Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return ValueTask.CompletedTask;
    }

    private static async Task CheckAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        if (connection.PostgreSqlVersion.Major < PostgresCluster.MajorVersionMin)
        {
            throw new InvalidOperationException($"PostgreSQL {connection.PostgreSqlVersion}: the schema needs {PostgresCluster.MajorVersionMin} or later.");
        }
    }

    /// <summary>The server binaries (<see cref="PostgresCluster.FindBinDirectory"/>); the ceiling also needs pgbench beside them.</summary>
    public static string FindBinDirectory() =>
        PostgresCluster.FindBinDirectory() is { } bin && File.Exists(Path.Combine(bin, "pgbench"))
            ? bin
            : throw new InvalidOperationException(PostgresCluster.NotFoundMessage + " The benchmark also needs pgbench (package postgresql-15 or postgresql-contrib).");

    /// <summary>A free loopback TCP port.</summary>
    public static int FreePort() => PostgresCluster.FreeLoopbackPort();
}
