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

    private const string EmailColumns = "escrow_id, kind, to_address, subject, outcome, provider_message_id, error, at";
    private const string InsertEmailSql = $"INSERT INTO email_log ({EmailColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    private const string InboundColumns =
        "provider_message_id, escrow_id, from_address, subject, received_at, within_deadline, grace_used, ignored_reason, preview";
    private const string AuditColumns = "id, key_id, action, escrow_id, reason, at, details, recipient_id, dedupe_key";

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

    public async Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO webhook_inbox AS w (provider, event_id, event_type, received_at, attempts)
            VALUES ($1, $2, $3, $4, 1)
            ON CONFLICT (provider, event_id) DO UPDATE SET attempts = w.attempts + 1
            RETURNING w.processed_at IS NOT NULL, w.attempts
            """);
        AddParameters(command.Parameters, P(provider), P(eventId), P(eventType), P(receivedAt.ToUniversalTime()));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new WebhookReceipt(reader.GetBoolean(0), reader.GetInt32(1));
    }

    public async Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM webhook_inbox WHERE provider = $1 AND event_id = $2 AND processed_at IS NOT NULL)");
        AddParameters(command.Parameters, P(provider), P(eventId));
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    public async Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO webhook_inbox AS w (provider, event_id, event_type, received_at, attempts, processed_at, outcome)
            VALUES ($1, $2, $3, $4, 1, $5, $6)
            ON CONFLICT (provider, event_id) DO UPDATE SET processed_at = excluded.processed_at, outcome = excluded.outcome
            WHERE w.processed_at IS NULL
            """);
        AddParameters(command.Parameters, P(provider), P(eventId), P(eventType), P(receivedAt.ToUniversalTime()),
            P(processedAt.ToUniversalTime()), P(outcome));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        await using var command = _dataSource.CreateCommand("""
            UPDATE webhook_inbox SET processed_at = $1, outcome = $2
            WHERE provider = $3 AND event_id = $4 AND processed_at IS NULL
            """);
        AddParameters(command.Parameters, P(processedAt.ToUniversalTime()), P(outcome), P(provider), P(eventId));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return _writes.WriteAsync(entry, cancellationToken);
    }

    private static void AddEmailLogCommand(NpgsqlBatch batch, EmailLogEntry entry)
    {
        var command = new NpgsqlBatchCommand(InsertEmailSql);
        AddParameters(command.Parameters, P(entry.EscrowId), P(entry.Kind), P(entry.To), P(entry.Subject),
            P(entry.Outcome), Text(entry.ProviderMessageId), Text(entry.Error), P(entry.At.ToUniversalTime()));
        batch.BatchCommands.Add(command);
    }

    public async Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {EmailColumns} FROM email_log WHERE escrow_id = $1 ORDER BY at, id");
        command.Parameters.Add(P(escrowId));
        return await ReadAllAsync(command, r => new EmailLogEntry(
            NullableGuid(r, 0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
            NullableString(r, 5), NullableString(r, 6), Time(r, 7)), cancellationToken);
    }

    public async Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default)
    {
        foreach (var (where, value) in new[] { ("provider_message_id = $1", providerMessageId), ("lower(to_address) = lower($1)", toAddress) })
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }
            await using var command = _dataSource.CreateCommand(
                $"SELECT {EmailColumns} FROM email_log WHERE {where} AND outcome = 'sent' ORDER BY at DESC, id DESC LIMIT 1");
            command.Parameters.Add(Text(value));
            var found = await ReadAllAsync(command, r => new EmailLogEntry(
                NullableGuid(r, 0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4),
                NullableString(r, 5), NullableString(r, 6), Time(r, 7)), cancellationToken);
            if (found.Count > 0)
            {
                return found[0];
            }
        }
        return null;
    }

    public async Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        await using var command = _dataSource.CreateCommand($"""
            INSERT INTO inbound_messages ({InboundColumns})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (provider_message_id) DO UPDATE SET
                escrow_id = excluded.escrow_id, from_address = excluded.from_address, subject = excluded.subject,
                within_deadline = excluded.within_deadline, grace_used = excluded.grace_used,
                ignored_reason = excluded.ignored_reason, preview = excluded.preview
            WHERE inbound_messages.ignored_reason = '{InboundMessageRecord.Pending}'
            """);
        AddParameters(command.Parameters, P(message.ProviderMessageId), P(message.EscrowId), P(message.From),
            P(message.Subject), P(message.ReceivedAt.ToUniversalTime()), P(message.WithinDeadline),
            P(message.GraceUsed), Text(message.IgnoredReason), P(message.Preview));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        // The no-op update makes the row come back when it exists: its received_at is the first delivery's.
        await using var command = _dataSource.CreateCommand($"""
            INSERT INTO inbound_messages ({InboundColumns})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (provider_message_id) DO UPDATE SET provider_message_id = inbound_messages.provider_message_id
            RETURNING received_at
            """);
        AddParameters(command.Parameters, P(message.ProviderMessageId), P(message.EscrowId), P(message.From),
            P(message.Subject), P(message.ReceivedAt.ToUniversalTime()), P(message.WithinDeadline),
            P(message.GraceUsed), Text(InboundMessageRecord.Pending), P(message.Preview));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return Time(reader, 0);
    }

    public async Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"""
            SELECT {InboundColumns} FROM inbound_messages WHERE escrow_id = $1
            ORDER BY received_at, provider_message_id COLLATE "C"
            """);
        command.Parameters.Add(P(escrowId));
        return await ReadAllAsync(command, r => new InboundMessageRecord(
            r.GetString(0), NullableGuid(r, 1), r.GetString(2), r.GetString(3), Time(r, 4),
            r.GetBoolean(5), r.GetBoolean(6), NullableString(r, 7), r.GetString(8)), cancellationToken);
    }

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

    private static AlertRecord ReadAlert(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), NullableGuid(r, 3), r.GetString(4), r.GetString(5), Time(r, 6),
        NullableTime(r, 7), NullableString(r, 8));

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
