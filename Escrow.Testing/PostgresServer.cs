using System.Globalization;
using Escrow.Grains.Storage;
using Escrow.Silo;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Escrow.Testing;

/// <summary>
/// One PostgreSQL server for the whole test run. <c>ESCROW_TEST_PG</c> (a connection string) points at an existing
/// server; otherwise a private cluster (<see cref="PostgresCluster"/>) is initialised in a fresh temp directory on a free port, and stopped when
/// the test process exits. A fresh directory and port per run mean a crashed run never blocks the next one.
/// </summary>
public sealed class PostgresServer
{
    private const string ConnectionStringVariable = "ESCROW_TEST_PG";
    private const int MajorVersionMin = PostgresCluster.MajorVersionMin;
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

        var bin = PostgresCluster.FindBinDirectory() ?? throw new InvalidOperationException(
            PostgresCluster.NotFoundMessage + $" Or set {ConnectionStringVariable} to a connection string.");
        RemoveStaleClusters();
        var root = Path.Combine(Path.GetTempPath(), "escrow-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var cluster = await PostgresCluster.StartAsync(bin, root, extraOptions: "-c max_connections=300");
        var data = cluster.DataDirectory;
        var port = cluster.Port;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(cluster);

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

    private static void Stop(PostgresCluster cluster)
    {
        try
        {
            cluster.Stop();
            Directory.Delete(cluster.Directory, recursive: true);
        }
        catch (IOException)
        {
            // The directory is in the temp folder and uniquely named; a leftover never blocks a later run.
        }
        catch (UnauthorizedAccessException)
        {
        }
        catch (InvalidOperationException)
        {
            // pg_ctl stop did not finish in time (a loaded machine). This runs at process exit, where an exception
            // would crash the test host after every test has passed; the server is left in its own temp directory.
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

    /// <summary>A free loopback TCP port, for silos in tests.</summary>
    public static int GetFreePort() => PostgresCluster.FreeLoopbackPort();
}
