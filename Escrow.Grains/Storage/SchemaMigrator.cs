using Npgsql;

namespace Escrow.Grains.Storage;

/// <summary>
/// Applies the <c>sql/*.sql</c> scripts embedded in this assembly, in name order. Every script is idempotent,
/// so a script whose text changed is simply applied again; an unchanged one is skipped.
/// </summary>
public static partial class SchemaMigrator
{
    private const string ResourcePrefix = "sql/";

    /// <summary>Any fixed number works; all silos of one database must agree on it. ASCII "escrowdb".</summary>
    private const long AdvisoryLockKey = 0x657363726F776462;

    private const string CreateMigrationsTableSql = """
        CREATE TABLE IF NOT EXISTS schema_migrations
        (
            name       text        NOT NULL,
            sha256     text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT schema_migrations_pk PRIMARY KEY (name)
        )
        """;

    private const string RecordSql = """
        INSERT INTO schema_migrations (name, sha256, applied_at) VALUES (@name, @sha256, now())
        ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = excluded.applied_at
        """;

    /// <summary>The embedded scripts in the order they are applied: (name, text).</summary>
    public static IReadOnlyList<(string Name, string Text)> Scripts { get; } = LoadScripts();

    /// <summary>
    /// Applies the scripts under a PostgreSQL advisory lock, so two silos starting together take turns; each script
    /// runs in its own transaction together with its row in <c>schema_migrations</c>.
    /// </summary>
    public static async Task ApplyAsync(NpgsqlDataSource dataSource, ILogger logger, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(logger);

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await ExecuteAsync(connection, "SELECT pg_advisory_lock(@key)", ct, ("key", AdvisoryLockKey));
        try
        {
            await ExecuteAsync(connection, CreateMigrationsTableSql, ct);
            var recorded = await ReadRecordedAsync(connection, ct);
            foreach (var (name, text) in Scripts)
            {
                var sha256 = Checksum(text);
                recorded.TryGetValue(name, out var previous);
                if (string.Equals(previous, sha256, StringComparison.Ordinal))
                {
                    LogSkipped(logger, name);
                    continue;
                }

                await using (var transaction = await connection.BeginTransactionAsync(ct))
                {
                    try
                    {
                        await ExecuteAsync(connection, text, ct);
                    }
                    catch (PostgresException e)
                    {
                        throw new InvalidOperationException($"Applying sql/{name} failed: {e.MessageText} (SQLSTATE {e.SqlState}).", e);
                    }
                    await ExecuteAsync(connection, RecordSql, ct, ("name", name), ("sha256", sha256));
                    await transaction.CommitAsync(ct);
                }

                if (previous is null)
                {
                    LogApplied(logger, name, sha256);
                }
                else
                {
                    LogReapplied(logger, name, previous, sha256);
                }
            }
        }
        finally
        {
            // Released even when cancelled; closing the connection would release it too.
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock(@key)", CancellationToken.None, ("key", AdvisoryLockKey));
        }
    }

    private static async Task<Dictionary<string, string>> ReadRecordedAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var recorded = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT name, sha256 FROM schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            recorded[reader.GetString(0)] = reader.GetString(1);
        }
        return recorded;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await command.ExecuteNonQueryAsync(ct);
    }

    private static string Checksum(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));

    private static List<(string Name, string Text)> LoadScripts()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        var scripts = new List<(string Name, string Text)>();
        foreach (var resource in assembly.GetManifestResourceNames()
                     .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
                     .Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"Embedded script {resource} could not be opened.");
            using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
            scripts.Add((resource[ResourcePrefix.Length..], reader.ReadToEnd()));
        }
        if (scripts.Count == 0)
        {
            throw new InvalidOperationException(
                $"No sql/*.sql scripts are embedded in {assembly.GetName().Name}; check the EmbeddedResource item in Escrow.Grains.csproj.");
        }
        return scripts;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Schema script {Script} is already applied; skipped")]
    private static partial void LogSkipped(ILogger logger, string script);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Applied schema script {Script} (sha256 {Sha256})")]
    private static partial void LogApplied(ILogger logger, string script, string sha256);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning,
        Message = "Schema script {Script} changed since it was applied (sha256 {Previous} -> {Current}); re-applied it")]
    private static partial void LogReapplied(ILogger logger, string script, string previous, string current);
}
