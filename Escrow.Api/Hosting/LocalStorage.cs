using Npgsql;

namespace Escrow.Api.Hosting;

/// <summary>
/// Where a run with no connection string keeps its state. Where PostgreSQL's server binaries are installed, a private
/// cluster under .escrow-data/ of the working directory (or Escrow:DataDirectory) is started for this process and
/// stopped when it exits, so a restart loses nothing; elsewhere, or with Escrow:Storage=InMemory, state is in memory.
/// Never in live mode: real money is kept only in the database the operator configures.
/// </summary>
public sealed class LocalStorage
{
    public const string DataDirectoryKey = "Escrow:DataDirectory";
    public const string StorageKey = "Escrow:Storage";
    public const string DefaultDirectoryName = ".escrow-data";
    private const string DatabaseName = "escrow";

    private LocalStorage(string? directory, PostgresCluster? cluster, string? inMemoryReason)
    {
        Directory = directory;
        Cluster = cluster;
        InMemoryReason = inMemoryReason;
    }

    /// <summary>The local run's data directory (the cluster and the kept secrets), or null when it has none.</summary>
    public string? Directory { get; }

    public PostgresCluster? Cluster { get; }

    /// <summary>Why state is in memory, when it is and no connection string was given.</summary>
    public string? InMemoryReason { get; }

    public string? SecretsFile => Cluster is null ? null : Path.Combine(Directory!, "secrets.json");

    /// <summary>Decides the storage and, for a local cluster, starts it and sets ConnectionStrings:Escrow to it.</summary>
    public static async Task<LocalStorage> PrepareAsync(ConfigurationManager configuration)
    {
        if (EscrowHosting.IsDurable(configuration))
        {
            return new LocalStorage(null, null, null);
        }
        if (LiveMode.IsLive(configuration))
        {
            // Real money is kept only where the operator says (ConnectionStrings:Escrow), never in a cluster of our own;
            // the live-mode check refuses the start without it.
            return new LocalStorage(null, null, null);
        }
        if (string.Equals(configuration[StorageKey], "InMemory", StringComparison.OrdinalIgnoreCase))
        {
            return new LocalStorage(null, null, $"{StorageKey}=InMemory");
        }
        if (PostgresCluster.FindBinDirectory() is not { } bin)
        {
            return new LocalStorage(null, null, "PostgreSQL's server binaries are not installed (apt-get install postgresql-15 to keep state)");
        }
        var directory = Path.GetFullPath(configuration[DataDirectoryKey] is { Length: > 0 } configured
            ? configured
            : Path.Combine(System.IO.Directory.GetCurrentDirectory(), DefaultDirectoryName));
        PostgresCluster cluster;
        try
        {
            cluster = await PostgresCluster.StartAsync(bin, Path.Combine(directory, "postgres"), detached: true);
        }
        catch (InvalidOperationException e)
        {
            return new LocalStorage(null, null, $"the PostgreSQL cluster in {directory} could not start: {e.Message.Split('\n')[0]}");
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.Stop();
        var admin = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = cluster.Port, Username = "postgres", Database = "postgres" };
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync();
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @name", connection);
            exists.Parameters.AddWithValue("name", DatabaseName);
            if (await exists.ExecuteScalarAsync() is null)
            {
                await using var create = new NpgsqlCommand($"CREATE DATABASE {DatabaseName}", connection);
                await create.ExecuteNonQueryAsync();
            }
        }
        admin.Database = DatabaseName;
        configuration.AddInMemoryCollection(new Dictionary<string, string?> { [$"ConnectionStrings:{EscrowHosting.ConnectionStringName}"] = admin.ConnectionString });
        return new LocalStorage(directory, cluster, null);
    }

    /// <summary>The banner's storage line.</summary>
    public string Describe(IConfiguration configuration) => this switch
    {
        { Cluster: { } c } => $"  Storage   PostgreSQL, private cluster in {Directory} (127.0.0.1:{c.Port}): everything is kept across restarts."
            + $"{Environment.NewLine}            To start over: stop the service and delete {Directory}",
        { InMemoryReason: { } why } => $"  Storage   IN MEMORY ({why}): state is lost when this process stops.",
        _ => EscrowHosting.IsDurable(configuration)
            ? "  Storage   PostgreSQL (ConnectionStrings:Escrow): state, reminders and ledger are durable."
            : "  Storage   IN MEMORY: state is lost when this process stops.",
    };
}
