using Npgsql;
using NpgsqlTypes;
using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

/// <summary>
/// The durable <see cref="IEscrowStore"/> over the tables of sql/010-escrow.sql. Every statement is parameterised,
/// and every write is idempotent so a grain can re-send after a crash.
/// </summary>
/// <remarks>
/// Statements use positional placeholders ($1, $2, ...) with unnamed parameters, added in the order of their numbers:
/// Npgsql then sends the SQL as is; with @names it parses and rewrites the SQL on every execution, which allocates.
/// Only the admin search keeps named parameters: its optional filters read better by name, and it runs rarely.
/// </remarks>
public sealed partial class PostgresEscrowStore : IEscrowStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _timeProvider = TimeProvider.System;
    private readonly GroupCommitter<object> _writes;

    public PostgresEscrowStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _writes = new GroupCommitter<object>(WriteGroupAsync);
    }

    /// <summary>With a clock for <see cref="EscrowQuery.Now"/> when a query leaves it out.</summary>
    public PostgresEscrowStore(NpgsqlDataSource dataSource, TimeProvider timeProvider) : this(dataSource) =>
        _timeProvider = timeProvider;

    private const string ProjectionColumns = """
        escrow_id, recipient_id, status, amount_minor, currency, recipient_share_minor, platform_fee_minor,
        payment_intent_id, charge_id, transfer_id, created_at, deadline, reply_deadline, status_changed_at,
        transfer_attempts, dispute_open, version, sender_key, bodies_erased, effect_waiting_since, outbox_seq,
        transfer_retries_exhausted
        """;

    private const string InsertLedgerSql = """
        INSERT INTO escrow_ledger (escrow_id, seq, kind, status, amount_minor, currency, at, data)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (escrow_id, seq) DO NOTHING
        """;

    // $1 to $22 are the ProjectionColumns in order.
    private const string UpsertProjectionSql = $"""
        INSERT INTO escrow_projection ({ProjectionColumns}, synced_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, now())
        ON CONFLICT (escrow_id) DO UPDATE SET
            recipient_id = excluded.recipient_id,
            status = excluded.status,
            amount_minor = excluded.amount_minor,
            currency = excluded.currency,
            recipient_share_minor = excluded.recipient_share_minor,
            platform_fee_minor = excluded.platform_fee_minor,
            payment_intent_id = excluded.payment_intent_id,
            charge_id = excluded.charge_id,
            transfer_id = excluded.transfer_id,
            created_at = excluded.created_at,
            deadline = excluded.deadline,
            reply_deadline = excluded.reply_deadline,
            status_changed_at = excluded.status_changed_at,
            transfer_attempts = excluded.transfer_attempts,
            dispute_open = excluded.dispute_open,
            version = excluded.version,
            sender_key = excluded.sender_key,
            bodies_erased = excluded.bodies_erased,
            effect_waiting_since = excluded.effect_waiting_since,
            outbox_seq = excluded.outbox_seq,
            transfer_retries_exhausted = excluded.transfer_retries_exhausted,
            synced_at = excluded.synced_at
        WHERE (escrow_projection.version, escrow_projection.outbox_seq) < (excluded.version, excluded.outbox_seq)
        """;

    private const string QueryEscrowsSql = $"""
        SELECT {ProjectionColumns}
        FROM escrow_projection AS p
        WHERE (@status::text IS NULL OR p.status = @status)
          AND (@recipient_id::text IS NULL OR p.recipient_id = @recipient_id)
          AND (NOT @stuck_only OR
               (p.status = 'held' AND p.reply_deadline + @held_after < @now) OR
               (p.status = 'processing' AND p.status_changed_at < @now - @processing_after) OR
               (p.status = 'transfer_failed' AND p.status_changed_at < @now - @transfer_failed_after) OR
               (p.status = 'transfer_failed' AND p.transfer_retries_exhausted) OR
               (p.effect_waiting_since < @now - @effect_after) OR
               (p.status = 'pending_user_setup' AND p.status_changed_at < @now - @pending_setup_after) OR
               (p.status = 'refund_pending' AND p.status_changed_at < @now - @refund_pending_after))
          AND (@created_from::timestamptz IS NULL OR p.created_at >= @created_from)
          AND (@created_before::timestamptz IS NULL OR p.created_at < @created_before)
          AND (@after_created_at::timestamptz IS NULL OR (p.created_at, p.escrow_id) > (@after_created_at, @after_id))
        ORDER BY p.created_at, p.escrow_id
        LIMIT @limit
        """;

    public Task SyncEscrowAsync(EscrowProjection projection, IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        CheckProjection(projection);
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            CheckEntry(projection.EscrowId, entry);
        }
        return _writes.WriteAsync(new PendingSync(projection, entries), cancellationToken);
    }

    private sealed record PendingSync(EscrowProjection Projection, IReadOnlyList<LedgerEntry> Entries);

    /// <summary>
    /// Writes the syncs and email-log rows that arrived while the previous transaction was committing in one
    /// transaction (group commit):
    /// under load many escrows share one commit; alone, a sync is written at once. Each caller's task completes only
    /// when its rows are committed. If a group fails, its syncs are written one by one so one bad row fails alone.
    /// </summary>
    private async Task WriteGroupAsync(IReadOnlyList<object> group, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection, transaction);
        foreach (var write in group)
        {
            switch (write)
            {
                case PendingSync sync:
                    AddSyncCommands(batch, sync.Projection, sync.Entries);
                    break;
                case EmailLogEntry email:
                    AddEmailLogCommand(batch, email);
                    break;
                default:
                    throw new ArgumentException($"Not a store write: {write.GetType().Name}.", nameof(group));
            }
        }
        await batch.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static void AddSyncCommands(NpgsqlBatch batch, EscrowProjection projection, IReadOnlyList<LedgerEntry> entries)
    {
        foreach (var e in entries)
        {
            var command = new NpgsqlBatchCommand(InsertLedgerSql);
            AddParameters(command.Parameters, P(e.EscrowId), P(e.Seq), P(e.Kind), P(e.Status), P(e.AmountMinor),
                Text(e.Currency), P(e.At.ToUniversalTime()), Jsonb(e.Data));
            batch.BatchCommands.Add(command);
        }

        var upsert = new NpgsqlBatchCommand(UpsertProjectionSql);
        var p = projection;
        AddParameters(upsert.Parameters, P(p.EscrowId), P(p.RecipientId), P(p.Status), P(p.AmountMinor), P(p.Currency),
            P(p.RecipientShareMinor), P(p.PlatformFeeMinor), Text(p.PaymentIntentId), Text(p.ChargeId),
            Text(p.TransferId), P(p.CreatedAt.ToUniversalTime()), P(p.Deadline?.ToUniversalTime()),
            P(p.ReplyDeadline?.ToUniversalTime()), P(p.StatusChangedAt.ToUniversalTime()), P(p.TransferAttempts),
            P(p.DisputeOpen), P(p.Version), Text(p.SenderKey), P(p.BodiesErased), P(p.EffectWaitingSince?.ToUniversalTime()),
            P(p.OutboxSeq), P(p.TransferRetriesExhausted));
        batch.BatchCommands.Add(upsert);
    }

    public async Task<EscrowProjection?> GetEscrowAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {ProjectionColumns} FROM escrow_projection WHERE escrow_id = $1");
        command.Parameters.Add(P(escrowId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadProjection(reader) : null;
    }

    public async Task<IReadOnlyList<LedgerEntry>> GetLedgerAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT escrow_id, seq, kind, status, amount_minor, currency, at, data::text
            FROM escrow_ledger WHERE escrow_id = $1 ORDER BY seq
            """);
        command.Parameters.Add(P(escrowId));
        return await ReadAllAsync(command, r => new LedgerEntry(
            r.GetGuid(0), r.GetInt32(1), r.GetString(2), r.GetString(3),
            r.IsDBNull(4) ? null : r.GetInt64(4), NullableString(r, 5), Time(r, 6), NullableString(r, 7)), cancellationToken);
    }

    public async Task<EscrowPage> QueryEscrowsAsync(EscrowQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Status is not null)
        {
            CheckStatus(query.Status);
        }
        var limit = PageLimit(query.Limit);
        (DateTimeOffset CreatedAt, Guid EscrowId)? after = query.After is null ? null : DecodeCursor(query.After);

        var rules = query.Rules ?? StuckRules.Default;
        await using var command = _dataSource.CreateCommand(QueryEscrowsSql);
        AddParameters(command.Parameters, NamedText("status", query.Status),
            NamedText("recipient_id", query.RecipientId), Named("stuck_only", query.StuckOnly),
            Named("now", (query.Now ?? _timeProvider.GetUtcNow()).ToUniversalTime()),
            Named("held_after", rules.HeldPastReplyDeadline), Named("processing_after", rules.Processing),
            Named("transfer_failed_after", rules.TransferFailed),
            Named("pending_setup_after", rules.PendingUserSetup),
            Named("refund_pending_after", rules.RefundPending), Named("effect_after", rules.EffectWaiting),
            Named("created_from", query.CreatedFrom?.ToUniversalTime()), Named("created_before", query.CreatedBefore?.ToUniversalTime()),
            Named("after_created_at", after?.CreatedAt), Named("after_id", after?.EscrowId), Named("limit", limit + 1));
        var rows = await ReadAllAsync(command, ReadProjection, cancellationToken);
        return InMemoryEscrowStore.ToPage(rows, limit);
    }

    public async Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT 1");
            return await command.ExecuteScalarAsync(cancellationToken) is 1;
        }
        catch (NpgsqlException)
        {
            return false;
        }
    }

    private static EscrowProjection ReadProjection(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetInt64(5), r.GetInt64(6),
        NullableString(r, 7), NullableString(r, 8), NullableString(r, 9), Time(r, 10), NullableTime(r, 11), NullableTime(r, 12),
        Time(r, 13), r.GetInt32(14), r.GetBoolean(15), r.GetInt32(16), NullableString(r, 17), r.GetBoolean(18),
        NullableTime(r, 19), r.GetInt32(20), r.GetBoolean(21));

    private static async Task<List<T>> ReadAllAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken ct)
    {
        var rows = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    private static DateTimeOffset Time(NpgsqlDataReader r, int i) => r.GetFieldValue<DateTimeOffset>(i);

    private static DateTimeOffset? NullableTime(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : Time(r, i);

    private static string? NullableString(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static Guid? NullableGuid(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetGuid(i);

    /// <summary>Adds parameters in the order of their numbers: the first is $1.</summary>
    private static void AddParameters(NpgsqlParameterCollection parameters, params ReadOnlySpan<NpgsqlParameter> values)
    {
        foreach (var value in values)
        {
            parameters.Add(value);
        }
    }

    /// <summary>A typed positional parameter, so a NULL value still has a PostgreSQL type.</summary>
    private static NpgsqlParameter<T> P<T>(T value) => new() { TypedValue = value is string text ? (T)(object)CleanText(text) : value };

    private static NpgsqlParameter Text(string? value) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = value is null ? DBNull.Value : CleanText(value) };

    private static NpgsqlParameter Jsonb(string? value) => new() { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = value is null ? DBNull.Value : CleanJson(value) };

    /// <summary>A typed named parameter, for the admin search only.</summary>
    private static NpgsqlParameter<T> Named<T>(string name, T value) => new(name, value);

    private static NpgsqlParameter NamedText(string name, string? value) =>
        new(name, NpgsqlDbType.Text) { Value = value is null ? DBNull.Value : CleanText(value) };
}
