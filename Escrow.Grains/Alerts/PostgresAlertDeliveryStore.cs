using Npgsql;
using NpgsqlTypes;

namespace Escrow.Grains.Alerts;

public sealed class PostgresAlertDeliveryStore(NpgsqlDataSource dataSource) : IAlertDeliveryStore
{
    private const string SeverityRank = "CASE a.severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 ELSE 0 END";

    public async Task RegisterTargetsAsync(IReadOnlyList<AlertTarget> targets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var target in targets)
        {
            await using var command = dataSource.CreateCommand("""
                INSERT INTO alert_delivery_targets (target, after_alert_id)
                SELECT $1, coalesce(max(id), 0) FROM alerts
                ON CONFLICT (target) DO NOTHING
                """);
            command.Parameters.Add(Text(target.Id));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public async Task QueueNewAlertsAsync(IReadOnlyList<AlertTarget> targets, DateTimeOffset now, TimeSpan retryFor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var target in targets)
        {
            await using var command = dataSource.CreateCommand($"""
                INSERT INTO alert_deliveries (alert_id, target, destination, state, next_attempt_at, give_up_at)
                SELECT a.id, t.target, $2, 'pending', $4, a.created_at + $5
                FROM alert_delivery_targets t
                JOIN alerts a ON a.id > t.after_alert_id
                WHERE t.target = $1
                  AND a.created_at > $4 - $5
                  AND {SeverityRank} >= $3
                  AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.target = t.target)
                ORDER BY a.id
                ON CONFLICT (alert_id, target) DO NOTHING
                """);
            command.Parameters.Add(Text(target.Id));
            command.Parameters.Add(Text(target.Destination));
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = AlertSeverity.Rank(target.MinimumSeverity) });
            command.Parameters.Add(Time(now));
            command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = retryFor, NpgsqlDbType = NpgsqlDbType.Interval });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public async Task<IReadOnlyList<DueAlertDelivery>> ClaimDueAsync(DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            WITH due AS (
                SELECT alert_id, target FROM alert_deliveries
                WHERE state = 'pending' AND next_attempt_at <= $1
                ORDER BY next_attempt_at, alert_id
                LIMIT $3
                FOR UPDATE SKIP LOCKED),
            claimed AS (
                UPDATE alert_deliveries d SET next_attempt_at = $2, attempts = d.attempts + 1
                FROM due WHERE d.alert_id = due.alert_id AND d.target = due.target
                RETURNING d.alert_id, d.target, d.attempts, d.give_up_at)
            SELECT a.id, a.kind, a.severity, a.escrow_id, a.dedupe_key, a.details, a.created_at, a.acknowledged_at,
                   a.acknowledged_by, p.recipient_id, c.target, c.attempts, c.give_up_at
            FROM claimed c
            JOIN alerts a ON a.id = c.alert_id
            LEFT JOIN escrow_projection p ON p.escrow_id = a.escrow_id
            ORDER BY a.id
            """);
        command.Parameters.Add(Time(now));
        command.Parameters.Add(Time(leaseUntil));
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Math.Clamp(limit, 1, 1000) });
        var rows = new List<DueAlertDelivery>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var alert = new AlertRecord(reader.GetInt64(0), reader.GetString(1), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetGuid(3), reader.GetString(4), reader.GetString(5), TimeAt(reader, 6),
                reader.IsDBNull(7) ? null : TimeAt(reader, 7), reader.IsDBNull(8) ? null : reader.GetString(8));
            rows.Add(new DueAlertDelivery(alert, reader.IsDBNull(9) ? null : reader.GetString(9), reader.GetString(10),
                reader.GetInt32(11), TimeAt(reader, 12)));
        }
        return rows;
    }

    public async Task RecordDeliveredAsync(long alertId, string target, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE alert_deliveries SET state = 'delivered', delivered_at = $3, last_error = NULL
            WHERE alert_id = $1 AND target = $2
            """);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = alertId });
        command.Parameters.Add(Text(target));
        command.Parameters.Add(Time(at));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task RecordFailedAsync(long alertId, string target, string error, DateTimeOffset? nextAttemptAt, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE alert_deliveries
            SET state = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
                next_attempt_at = coalesce($4, next_attempt_at),
                last_error = $3
            WHERE alert_id = $1 AND target = $2 AND state = 'pending'
            """);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = alertId });
        command.Parameters.Add(Text(target));
        command.Parameters.Add(Text(EscrowStoreRules.CleanText(error)));
        command.Parameters.Add(new NpgsqlParameter { Value = nextAttemptAt is { } next ? next.UtcDateTime : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<AlertDeliveryRecord>> ListAsync(string? state, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT d.alert_id, a.kind, a.severity, d.target, d.destination, d.state, d.attempts,
                   CASE WHEN d.state = 'pending' THEN d.next_attempt_at END, d.last_error, d.delivered_at
            FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
            WHERE $1::text IS NULL OR d.state = $1
            ORDER BY d.alert_id DESC, d.target
            LIMIT $2
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)state ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = EscrowStoreRules.ListLimit(limit) });
        var rows = new List<AlertDeliveryRecord>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new AlertDeliveryRecord(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetString(4), reader.GetString(5), reader.GetInt32(6), reader.IsDBNull(7) ? null : TimeAt(reader, 7),
                reader.IsDBNull(8) ? null : reader.GetString(8), reader.IsDBNull(9) ? null : TimeAt(reader, 9)));
        }
        return rows;
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter<DateTime> Time(DateTimeOffset value) => new() { TypedValue = value.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz };

    private static DateTimeOffset TimeAt(NpgsqlDataReader reader, int ordinal) => new(reader.GetFieldValue<DateTime>(ordinal), TimeSpan.Zero);
}
