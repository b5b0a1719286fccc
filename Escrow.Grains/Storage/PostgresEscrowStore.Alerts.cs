using Npgsql;
using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

// Alerts: raised once per dedupe key, listed, acknowledged.
public sealed partial class PostgresEscrowStore
{
    private const string AlertColumns = "id, kind, severity, escrow_id, dedupe_key, details, created_at, acknowledged_at, acknowledged_by";

    // The second branch returns the stored alert when the insert did nothing. If a concurrent insert of the same key
    // committed after this statement's snapshot, neither branch sees a row; the caller then simply runs it again.
    private const string RaiseAlertSql = $"""
        WITH inserted AS (
            INSERT INTO alerts (kind, severity, escrow_id, dedupe_key, details, created_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING {AlertColumns}
        )
        SELECT {AlertColumns}, true AS created FROM inserted
        UNION ALL
        SELECT {AlertColumns}, false AS created FROM alerts
        WHERE dedupe_key = $4 AND NOT EXISTS (SELECT 1 FROM inserted)
        """;

    public async Task<(AlertRecord Alert, bool Created)> RaiseAlertAsync(NewAlert alert, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alert);
        ArgumentException.ThrowIfNullOrEmpty(alert.DedupeKey, nameof(alert.DedupeKey));
        const int AttemptsMax = 3;
        for (var attempt = 1; attempt <= AttemptsMax; attempt++)
        {
            await using var command = _dataSource.CreateCommand(RaiseAlertSql);
            AddParameters(command.Parameters, P(alert.Kind), P(alert.Severity), P(alert.EscrowId), P(alert.DedupeKey),
                P(alert.Details), P(alert.CreatedAt.ToUniversalTime()));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                return (ReadAlert(reader), reader.GetBoolean(9));
            }
        }
        throw new InvalidOperationException($"Alert {alert.DedupeKey} was neither inserted nor found after {AttemptsMax} attempts.");
    }

    public async Task<IReadOnlyList<AlertRecord>> ListAlertsAsync(bool openOnly, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"""
            SELECT {AlertColumns} FROM alerts
            WHERE (NOT $1 OR acknowledged_at IS NULL)
            ORDER BY id DESC
            LIMIT $2
            """);
        AddParameters(command.Parameters, P(openOnly), P(ListLimit(limit)));
        return await ReadAllAsync(command, ReadAlert, cancellationToken);
    }

    public async Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        // The first acknowledgement wins: a second one finds the row but changes nothing.
        await using var command = _dataSource.CreateCommand("""
            UPDATE alerts
            SET acknowledged_at = CASE WHEN acknowledged_at IS NULL THEN $1 ELSE acknowledged_at END,
                acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN $2 ELSE acknowledged_by END
            WHERE id = $3
            """);
        AddParameters(command.Parameters, P(at.ToUniversalTime()), P(acknowledgedBy), P(alertId));
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, AuditEntry audit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        ArgumentNullException.ThrowIfNull(audit);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var acknowledge = new NpgsqlCommand("""
            UPDATE alerts
            SET acknowledged_at = CASE WHEN acknowledged_at IS NULL THEN $1 ELSE acknowledged_at END,
                acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN $2 ELSE acknowledged_by END
            WHERE id = $3
            """, connection, transaction);
        AddParameters(acknowledge.Parameters, P(at.ToUniversalTime()), P(acknowledgedBy), P(alertId));
        if (await acknowledge.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            return false;
        }
        await using var insert = new NpgsqlCommand(InsertAuditSql, connection, transaction);
        AddAuditParameters(insert.Parameters, audit);
        await insert.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private static AlertRecord ReadAlert(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), NullableGuid(r, 3), r.GetString(4), r.GetString(5), Time(r, 6),
        NullableTime(r, 7), NullableString(r, 8));
}
