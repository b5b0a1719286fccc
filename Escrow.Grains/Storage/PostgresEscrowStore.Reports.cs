using Npgsql;
using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

// The audit log and what reconciliation and the dashboard read.
public sealed partial class PostgresEscrowStore
{
    private const string AuditColumns = "id, key_id, action, escrow_id, reason, at, details, recipient_id, dedupe_key";

    private const string InsertAuditSql = """
        INSERT INTO audit_log (key_id, action, escrow_id, reason, at, details, recipient_id, dedupe_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (dedupe_key) DO NOTHING
        """;

    private static void AddAuditParameters(NpgsqlParameterCollection parameters, AuditEntry entry) =>
        AddParameters(parameters, P(entry.KeyId), P(entry.Action), P(entry.EscrowId), Text(entry.Reason),
            P(entry.At.ToUniversalTime()), Text(entry.Details), Text(entry.RecipientId), Text(entry.DedupeKey));

    public async Task WriteAuditAsync(AuditEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var command = _dataSource.CreateCommand(InsertAuditSql);
        AddAuditParameters(command.Parameters, entry);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task<IReadOnlyList<AuditEntry>> GetAuditAsync(Guid? escrowId, int limit, CancellationToken cancellationToken = default) =>
        QueryAuditAsync(new AuditQuery(escrowId, null, null, limit), cancellationToken);

    public async Task<IReadOnlyList<AuditEntry>> QueryAuditAsync(AuditQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        await using var command = _dataSource.CreateCommand($"""
            SELECT {AuditColumns} FROM audit_log
            WHERE ($1::uuid IS NULL OR escrow_id = $1)
              AND ($2::text IS NULL OR recipient_id = $2)
              AND ($3::timestamptz IS NULL OR at >= $3)
            ORDER BY id DESC
            LIMIT $4
            """);
        AddParameters(command.Parameters, P(query.EscrowId), Text(query.RecipientId), P(query.Since?.ToUniversalTime()), P(ListLimit(query.Limit)));
        return await ReadAllAsync(command, r => new AuditEntry(
            r.GetInt64(0), r.GetString(1), r.GetString(2), NullableGuid(r, 3), NullableString(r, 4), Time(r, 5), NullableString(r, 6),
            NullableString(r, 7), NullableString(r, 8)),
            cancellationToken);
    }

    public async Task<IReadOnlyList<EscrowProjection>> GetEscrowsTouchedAsync(DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"""
            SELECT {ProjectionColumns} FROM escrow_projection
            WHERE (created_at >= $1 AND created_at < $2) OR (status_changed_at >= $1 AND status_changed_at < $2)
            ORDER BY created_at, escrow_id
            LIMIT $3
            """);
        AddParameters(command.Parameters, P(from.ToUniversalTime()), P(to.ToUniversalTime()), P(limit));
        return await ReadAllAsync(command, ReadProjection, cancellationToken);
    }

    public async Task SaveReconciliationReportAsync(DateOnly date, string reportJson, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO reconciliation_reports (report_date, report, created_at) VALUES ($1, $2::jsonb, now())
            ON CONFLICT (report_date) DO UPDATE SET report = excluded.report, created_at = excluded.created_at
            """);
        AddParameters(command.Parameters, P(date), P(reportJson));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<string?> GetReconciliationReportAsync(DateOnly date, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT report::text FROM reconciliation_reports WHERE report_date = $1");
        command.Parameters.Add(P(date));
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task<IReadOnlyList<StatusCount>> CountByStatusAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT status, currency, count(*), coalesce(sum(amount_minor), 0)::bigint FROM escrow_projection GROUP BY status, currency ORDER BY status, currency");
        return await ReadAllAsync(command, r => new StatusCount(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3)), cancellationToken);
    }

    public async Task<IReadOnlyList<HourlyLifecycleCount>> CountLifecyclesPerHourAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT hour, sum(created)::bigint, sum(released)::bigint, sum(refunded)::bigint
            FROM (
                SELECT date_trunc('hour', created_at, 'UTC') AS hour, 1 AS created, 0 AS released, 0 AS refunded
                FROM escrow_projection WHERE created_at >= $1 AND created_at < $2
                UNION ALL
                SELECT date_trunc('hour', status_changed_at, 'UTC'), 0, (status = 'released')::int, (status = 'refunded')::int
                FROM escrow_projection WHERE status IN ('released', 'refunded') AND status_changed_at >= $1 AND status_changed_at < $2
            ) AS events
            GROUP BY hour ORDER BY hour
            """);
        AddParameters(command.Parameters, P(from.ToUniversalTime()), P(to.ToUniversalTime()));
        return await ReadAllAsync(command, r => new HourlyLifecycleCount(Time(r, 0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3)), cancellationToken);
    }
}
