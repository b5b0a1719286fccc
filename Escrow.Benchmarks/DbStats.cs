namespace Escrow.Benchmarks;

public sealed record StatementCount(string Query, long Calls, long Rows, double Milliseconds);

/// <summary>
/// Counters read from the maintenance database, so that the benchmark's own queries never count as the service's
/// commits. PostgreSQL 15 backends publish their counters at most once a second, and an idle backend up to 10 s
/// later: <see cref="SettledCommitsAsync"/> waits for the counter to stop moving.
/// </summary>
public sealed class DbStats(string adminConnectionString, string database)
{
    public string Database => database;

    public async Task<long> CommitsAsync()
    {
        await using var c = new NpgsqlConnection(adminConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database WHERE datname = @d", c);
        cmd.Parameters.AddWithValue("d", database);
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.NextResultAsync();
        return await reader.ReadAsync() ? reader.GetInt64(0) : 0;
    }

    /// <summary>Waits at least 11 s (the idle-backend flush interval), then until two reads 2 s apart agree.</summary>
    public async Task<long> SettledCommitsAsync()
    {
        await Task.Delay(TimeSpan.FromSeconds(11));
        var last = await CommitsAsync();
        for (var i = 0; i < 30; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            var now = await CommitsAsync();
            // Two commits of slack: our own read when it is the service's database.
            if (now - last <= 2)
            {
                return now;
            }
            last = now;
        }
        return last;
    }

    public Task ResetStatementsAsync() => Sql.ExecuteAsync(adminConnectionString, "SELECT pg_stat_statements_reset()");

    /// <summary>Top-level statements of the service's database since the last reset, most called first.</summary>
    public Task<List<StatementCount>> StatementsAsync() => Sql.RowsAsync(adminConnectionString, """
        SELECT s.query, sum(s.calls)::bigint, sum(s.rows)::bigint, sum(s.total_exec_time)
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = @d AND s.toplevel
        GROUP BY s.query ORDER BY 2 DESC
        """, r => new StatementCount(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetDouble(3)), ("d", database));

    /// <summary>
    /// The next transaction id, without assigning one: its delta counts transactions that wrote (took an xid) and
    /// therefore waited for a WAL flush at commit. Cluster-wide: meaningful on the private cluster, where only the
    /// service runs while it is read.
    /// </summary>
    public Task<long> NextXidAsync() => Sql.NumberAsync(adminConnectionString, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint");

    /// <summary>WAL volume and WAL flushes (pg_stat_wal), for bytes of WAL per lifecycle and commits per fsync.</summary>
    public async Task<(long Bytes, long Syncs)> WalAsync() =>
        (await Sql.RowsAsync(adminConnectionString, "SELECT wal_bytes::bigint, wal_sync FROM pg_stat_wal", r => (r.GetInt64(0), r.GetInt64(1)))).Single();

    public static string Shorten(string query, int max = 110)
    {
        var one = string.Join(' ', query.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return one.Length <= max ? one : one[..(max - 1)] + "…";
    }

    /// <summary>A statement that can only read: it costs a commit in xact_commit but no WAL flush.</summary>
    public static bool IsRead(string query)
    {
        var q = query.TrimStart().ToUpperInvariant();
        return q.StartsWith("SELECT", StringComparison.Ordinal) && !q.Contains("INSERT", StringComparison.Ordinal)
            && !q.Contains("UPDATE", StringComparison.Ordinal) && !q.Contains("DELETE", StringComparison.Ordinal)
            && !q.Contains("UPSERT", StringComparison.Ordinal) && !q.Contains("WRITE", StringComparison.Ordinal);
    }

    public static string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
}
