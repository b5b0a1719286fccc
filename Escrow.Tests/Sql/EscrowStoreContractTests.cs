namespace Escrow.Tests.Sql;

/// <summary>The documented semantics of <see cref="IEscrowStore"/>; every implementation must pass all of them.</summary>
public abstract class EscrowStoreContractTests
{
    protected static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    protected abstract Task<IEscrowStore> CreateStoreAsync();

    protected static EscrowProjection AProjection(Guid? id = null, string status = "held", int version = 1, string recipient = "rcp-1",
        DateTimeOffset? createdAt = null, DateTimeOffset? statusChangedAt = null, DateTimeOffset? replyDeadline = null) => new(
        id ?? Guid.NewGuid(), recipient, status, 15_00, "EUR", 12_00, 3_00, "pi_1", null, null,
        createdAt ?? T0, T0.AddHours(72), replyDeadline ?? T0.AddHours(72), statusChangedAt ?? T0, 0, false, version);

    protected static LedgerEntry AnEntry(Guid escrowId, int seq, string status = "held") =>
        new(escrowId, seq, "captured", status, 15_00, "EUR", T0.AddMinutes(seq), """{"pi": "pi_1"}""");

    [Fact]
    public async Task Sync_stores_the_projection_and_ledger_and_a_resend_changes_nothing()
    {
        var store = await CreateStoreAsync();
        var p = AProjection();
        IReadOnlyList<LedgerEntry> entries = [AnEntry(p.EscrowId, 0, "awaiting_payment"), AnEntry(p.EscrowId, 1)];

        await store.SyncEscrowAsync(p, entries);
        await store.SyncEscrowAsync(p, entries);

        Assert.Equal(p, await store.GetEscrowAsync(p.EscrowId));
        Assert.Equal(entries, await store.GetLedgerAsync(p.EscrowId));
    }

    [Fact]
    public async Task A_stale_sync_never_overwrites_a_newer_projection_but_still_appends_its_ledger_rows()
    {
        var store = await CreateStoreAsync();
        var newer = AProjection(status: "processing", version: 5);
        await store.SyncEscrowAsync(newer, [AnEntry(newer.EscrowId, 5, "processing")]);

        await store.SyncEscrowAsync(newer with { Status = "held", Version = 4 }, [AnEntry(newer.EscrowId, 4)]);
        await store.SyncEscrowAsync(newer with { Status = "held", Version = 5 }, []);

        Assert.Equal(newer, await store.GetEscrowAsync(newer.EscrowId));
        Assert.Equal([4, 5], (await store.GetLedgerAsync(newer.EscrowId)).Select(e => e.Seq));
    }

    [Fact]
    public async Task A_newer_sync_replaces_the_projection_and_a_ledger_row_keeps_its_first_content()
    {
        var store = await CreateStoreAsync();
        var p = AProjection();
        await store.SyncEscrowAsync(p, [AnEntry(p.EscrowId, 1)]);

        var released = p with { Status = "released", TransferId = "tr_1", Version = 2, StatusChangedAt = T0.AddHours(1) };
        await store.SyncEscrowAsync(released, [AnEntry(p.EscrowId, 1, "released"), AnEntry(p.EscrowId, 2, "released")]);

        Assert.Equal(released, await store.GetEscrowAsync(p.EscrowId));
        Assert.Equal(["held", "released"], (await store.GetLedgerAsync(p.EscrowId)).Select(e => e.Status));
    }

    [Fact]
    public async Task Every_projection_and_ledger_column_round_trips_with_values_and_with_nulls()
    {
        var store = await CreateStoreAsync();
        // Each value differs from the others of its type, so a value bound to the wrong column shows.
        var full = new EscrowProjection(Guid.NewGuid(), "rcp-full", "processing", 20_00, "GBP", 18_00, 2_00, "pi_9", "ch_9", "tr_9",
            T0, T0.AddHours(70), T0.AddHours(71), T0.AddHours(2), 3, true, 9);
        var bare = full with
        {
            EscrowId = Guid.NewGuid(), PaymentIntentId = null, ChargeId = null, TransferId = null, Deadline = null, ReplyDeadline = null,
            TransferAttempts = 0, DisputeOpen = false,
        };
        IReadOnlyList<LedgerEntry> entries =
        [
            new(full.EscrowId, 8, "transfer_started", "processing", 18_00, "GBP", T0.AddHours(2), """{"tr": "tr_9"}"""),
            new(full.EscrowId, 9, "dispute_opened", "processing", null, null, T0.AddHours(3), null),
        ];

        await store.SyncEscrowAsync(full, entries);
        await store.SyncEscrowAsync(bare, []);

        Assert.Equal(full, await store.GetEscrowAsync(full.EscrowId));
        Assert.Equal(bare, await store.GetEscrowAsync(bare.EscrowId));
        Assert.Equal(entries, await store.GetLedgerAsync(full.EscrowId));
    }

    [Fact]
    public async Task Sync_rejects_an_unknown_status_a_broken_split_and_a_foreign_ledger_row()
    {
        var store = await CreateStoreAsync();
        var p = AProjection();

        await Assert.ThrowsAsync<ArgumentException>(() => store.SyncEscrowAsync(p with { Status = "lost" }, []));
        await Assert.ThrowsAsync<ArgumentException>(() => store.SyncEscrowAsync(p with { PlatformFeeMinor = 1 }, []));
        await Assert.ThrowsAsync<ArgumentException>(() => store.SyncEscrowAsync(p with { Currency = "eur" }, []));
        await Assert.ThrowsAsync<ArgumentException>(() => store.SyncEscrowAsync(p, [AnEntry(Guid.NewGuid(), 1)]));
        Assert.Null(await store.GetEscrowAsync(p.EscrowId));
    }

    [Fact]
    public async Task An_unknown_escrow_has_no_projection_and_an_empty_ledger()
    {
        var store = await CreateStoreAsync();

        Assert.Null(await store.GetEscrowAsync(Guid.NewGuid()));
        Assert.Empty(await store.GetLedgerAsync(Guid.NewGuid()));
    }

    [Fact]
    public async Task Query_pages_through_all_escrows_in_creation_order_with_an_opaque_cursor()
    {
        var store = await CreateStoreAsync();
        var recipient = "rcp-" + Guid.NewGuid().ToString("N");
        var created = new List<EscrowProjection>();
        for (var i = 0; i < 5; i++)
        {
            // Two escrows share each creation time, so the id breaks the tie.
            var p = AProjection(recipient: recipient, createdAt: T0.AddSeconds(i / 2));
            created.Add(p);
            await store.SyncEscrowAsync(p, []);
        }

        var seen = new List<EscrowProjection>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, Limit: 2, After: cursor));
            seen.AddRange(page.Items);
            cursor = page.Next;
            pages++;
        }
        while (cursor is not null && pages < 10);

        Assert.Equal(3, pages);
        Assert.Equal(created.OrderBy(p => p.CreatedAt).ThenBy(p => p.EscrowId.ToString("N"), StringComparer.Ordinal), seen);
    }

    [Fact]
    public async Task Query_filters_by_status_and_recipient()
    {
        var store = await CreateStoreAsync();
        var recipient = "rcp-" + Guid.NewGuid().ToString("N");
        var held = AProjection(recipient: recipient);
        var released = AProjection(recipient: recipient, status: "released");
        await store.SyncEscrowAsync(held, []);
        await store.SyncEscrowAsync(released, []);
        await store.SyncEscrowAsync(AProjection(recipient: "someone-else"), []);

        var page = await store.QueryEscrowsAsync(new EscrowQuery(Status: "released", RecipientId: recipient));

        Assert.Equal([released], page.Items);
        Assert.Null(page.Next);
        Assert.Equal(2, (await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient))).Items.Count);
    }

    [Fact]
    public async Task Query_filters_by_creation_date_from_inclusive_to_exclusive()
    {
        var store = await CreateStoreAsync();
        var recipient = "rcp-" + Guid.NewGuid().ToString("N");
        var day = new DateTimeOffset(2029, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var before = AProjection(recipient: recipient, createdAt: day.AddSeconds(-1));
        var first = AProjection(recipient: recipient, createdAt: day);
        var last = AProjection(recipient: recipient, createdAt: day.AddDays(1).AddSeconds(-1));
        var after = AProjection(recipient: recipient, createdAt: day.AddDays(1));
        foreach (var p in new[] { before, first, last, after })
        {
            await store.SyncEscrowAsync(p, []);
        }

        var page = await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, CreatedFrom: day, CreatedBefore: day.AddDays(1)));

        Assert.Equal([first, last], page.Items);
        Assert.Equal([before, first, last], (await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, CreatedBefore: day.AddDays(1)))).Items);
        Assert.Equal([last, after], (await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, CreatedFrom: day.AddHours(1)))).Items);
    }

    [Fact]
    public async Task Lifecycles_per_hour_count_creations_and_releases_and_refunds_in_their_utc_hours()
    {
        var store = await CreateStoreAsync();
        // A range of its own: no other test writes escrows in 2031.
        var from = new DateTimeOffset(2031, 1, 1, 10, 0, 0, TimeSpan.Zero);
        var to = from.AddHours(48);
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddMinutes(5)), []);
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddMinutes(59), status: "released", statusChangedAt: from.AddHours(2).AddMinutes(1)), []);
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddHours(1).AddMinutes(30), status: "refunded", statusChangedAt: from.AddHours(2).AddMinutes(59)), []);
        // Created before the range, released inside it: the release counts, the creation does not.
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddHours(-3), status: "released", statusChangedAt: from.AddHours(47).AddMinutes(59)), []);
        // In a non-terminal status its status change is not a release or a refund.
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddHours(-3), status: "transfer_failed", statusChangedAt: from.AddHours(5)), []);
        // Outside the range (to is exclusive).
        await store.SyncEscrowAsync(AProjection(createdAt: to, status: "released", statusChangedAt: to.AddMinutes(1)), []);
        // An offset other than UTC lands in its UTC hour.
        await store.SyncEscrowAsync(AProjection(createdAt: from.AddHours(1).AddMinutes(10).ToOffset(TimeSpan.FromHours(5))), []);

        var counts = await store.CountLifecyclesPerHourAsync(from, to);

        Assert.Equal(
            [
                new HourlyLifecycleCount(from, 2, 0, 0),
                new HourlyLifecycleCount(from.AddHours(1), 2, 0, 0),
                new HourlyLifecycleCount(from.AddHours(2), 0, 1, 1),
                new HourlyLifecycleCount(from.AddHours(47), 0, 1, 0),
            ],
            counts.Select(c => c with { Hour = c.Hour.ToUniversalTime() }));
        Assert.Empty(await store.CountLifecyclesPerHourAsync(to.AddHours(2), to.AddHours(3)));
    }

    [Fact]
    public async Task Stuck_escrows_are_exactly_those_past_their_documented_thresholds()
    {
        var store = await CreateStoreAsync();
        var recipient = "rcp-" + Guid.NewGuid().ToString("N");
        var now = T0.AddDays(30);
        EscrowProjection Changed(string status, DateTimeOffset at) => AProjection(recipient: recipient, status: status, statusChangedAt: at);
        // Each documented threshold, with the escrow it applies to as it stands at a given time, and a step:
        // one step past the threshold the escrow is stuck, one step short of it it is fine.
        var thresholds = new (TimeSpan Threshold, TimeSpan Step, Func<DateTimeOffset, EscrowProjection> At)[]
        {
            (TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1), at => AProjection(recipient: recipient, status: "held", replyDeadline: at)),
            (TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), at => Changed("processing", at)),
            (TimeSpan.FromHours(24), TimeSpan.FromHours(1), at => Changed("transfer_failed", at)),
            (TimeSpan.FromDays(7), TimeSpan.FromDays(1), at => Changed("pending_user_setup", at)),
            (TimeSpan.FromMinutes(60), TimeSpan.FromMinutes(1), at => Changed("refund_pending", at)),
            (TimeSpan.FromMinutes(60), TimeSpan.FromMinutes(1), at => Changed("released", now.AddDays(-2)) with { EffectWaitingSince = at }),
        };
        var stuck = thresholds.Select(t => t.At(now - t.Threshold - t.Step))
            .Append(Changed("transfer_failed", now.AddMinutes(-1)) with { TransferRetriesExhausted = true })
            .ToArray();
        var fine = thresholds.Select(t => t.At(now - t.Threshold + t.Step))
            .Append(Changed("released", now.AddDays(-20)))
            .Append(Changed("awaiting_payment", now.AddDays(-20)))
            .ToArray();
        foreach (var p in stuck.Concat(fine))
        {
            await store.SyncEscrowAsync(p, []);
        }

        var found = await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, StuckOnly: true, Now: now, Limit: 100));
        var withLongerRefundWindow = await store.QueryEscrowsAsync(new EscrowQuery(
            RecipientId: recipient, StuckOnly: true, Now: now, Rules: StuckRules.Default with { RefundPending = TimeSpan.FromHours(2) }, Limit: 100));

        Assert.Equal(stuck.Select(p => p.EscrowId).Order(), found.Items.Select(p => p.EscrowId).Order());
        Assert.DoesNotContain(withLongerRefundWindow.Items, p => p.Status == "refund_pending");
        Assert.Equal(6, withLongerRefundWindow.Items.Count);
        // The store's query and the rules the monitor alerts by agree on every row.
        Assert.All(stuck, p => Assert.True(StuckRules.Default.IsStuck(p, now), p.Status));
        Assert.All(fine, p => Assert.False(StuckRules.Default.IsStuck(p, now), p.Status));
    }

    [Fact]
    public async Task An_outbox_change_of_the_same_version_updates_the_projection_and_a_stale_one_does_not()
    {
        var store = await CreateStoreAsync();
        var recipient = "rcp-" + Guid.NewGuid().ToString("N");
        var now = T0.AddDays(30);
        var waiting = AProjection(recipient: recipient, status: "released", version: 5, statusChangedAt: now.AddHours(-3))
            with { EffectWaitingSince = now.AddHours(-2), OutboxSeq = 7 };
        await store.SyncEscrowAsync(waiting, []);
        Assert.Single((await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, StuckOnly: true, Now: now))).Items);

        // The effect completed without a history entry: same version, the outbox moved on.
        await store.SyncEscrowAsync(waiting with { EffectWaitingSince = null, OutboxSeq = 8 }, []);
        // A late resend of the older sync changes nothing.
        await store.SyncEscrowAsync(waiting, []);

        Assert.Null((await store.GetEscrowAsync(waiting.EscrowId))!.EffectWaitingSince);
        Assert.Empty((await store.QueryEscrowsAsync(new EscrowQuery(RecipientId: recipient, StuckOnly: true, Now: now))).Items);
    }

    [Fact]
    public async Task Query_rejects_a_cursor_it_did_not_issue()
    {
        var store = await CreateStoreAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => store.QueryEscrowsAsync(new EscrowQuery(After: "not-a-cursor")));
    }

    [Fact]
    public async Task Raising_an_alert_twice_with_one_dedupe_key_returns_the_first_alert()
    {
        var store = await CreateStoreAsync();
        var key = "transfer-exhausted/" + Guid.NewGuid();
        var escrowId = Guid.NewGuid();

        var (first, created) = await store.RaiseAlertAsync(new NewAlert("transfer_exhausted", "critical", escrowId, key, "8 attempts", T0));
        var (second, createdAgain) = await store.RaiseAlertAsync(new NewAlert("transfer_exhausted", "warning", null, key, "other", T0.AddHours(1)));

        Assert.True(created);
        Assert.False(createdAgain);
        Assert.Equal(first, second);
        Assert.Equal(new AlertRecord(first.Id, "transfer_exhausted", "critical", escrowId, key, "8 attempts", T0, null, null), first);
    }

    [Fact]
    public async Task Concurrent_alerts_with_one_dedupe_key_create_exactly_one()
    {
        var store = await CreateStoreAsync();
        var key = "breaker/" + Guid.NewGuid();

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            store.RaiseAlertAsync(new NewAlert("breaker_tripped", "warning", null, key, $"try {i}", T0))));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.Alert.Id).Distinct());
    }

    [Fact]
    public async Task Acknowledging_keeps_the_first_acknowledgement_and_removes_the_alert_from_the_open_list()
    {
        var store = await CreateStoreAsync();
        var (alert, _) = await store.RaiseAlertAsync(new NewAlert("k", "info", null, "ack/" + Guid.NewGuid(), "d", T0));

        Assert.True(await store.AcknowledgeAlertAsync(alert.Id, "ops-1", T0.AddMinutes(1)));
        Assert.True(await store.AcknowledgeAlertAsync(alert.Id, "ops-2", T0.AddMinutes(2)));
        Assert.False(await store.AcknowledgeAlertAsync(long.MaxValue, "ops-1", T0));

        var all = await store.ListAlertsAsync(openOnly: false, limit: 1000);
        Assert.Equal(alert with { AcknowledgedAt = T0.AddMinutes(1), AcknowledgedBy = "ops-1" }, all.Single(a => a.Id == alert.Id));
        Assert.DoesNotContain(await store.ListAlertsAsync(openOnly: true, limit: 1000), a => a.Id == alert.Id);
    }

    [Fact]
    public async Task A_sent_email_is_found_by_its_provider_id_else_the_latest_sent_to_its_address_in_any_case()
    {
        var store = await CreateStoreAsync();
        var to = $"r-{Guid.NewGuid():N}@example.com";
        var first = new EmailLogEntry(Guid.NewGuid(), "new-message", to, "Q", "sent", "pm-" + Guid.NewGuid(), null, T0);
        var latest = new EmailLogEntry(Guid.NewGuid(), "deadline-reminder-50", to, "R", "sent", "pm-" + Guid.NewGuid(), null, T0.AddHours(1));
        await store.LogEmailAsync(first);
        await store.LogEmailAsync(latest);
        await store.LogEmailAsync(latest with { Outcome = "failed", ProviderMessageId = null, At = T0.AddHours(2) });

        Assert.Equal(first, await store.FindSentEmailAsync(first.ProviderMessageId, to));
        Assert.Equal(latest, await store.FindSentEmailAsync("pm-unknown", to.ToUpperInvariant()));
        Assert.Equal(latest, await store.FindSentEmailAsync(null, to));
        Assert.Null(await store.FindSentEmailAsync("pm-unknown", "nobody-" + to));
    }

    [Fact]
    public async Task Alerts_are_listed_newest_first_within_the_limit()
    {
        var store = await CreateStoreAsync();
        var (older, _) = await store.RaiseAlertAsync(new NewAlert("k", "info", null, "a/" + Guid.NewGuid(), "d", T0));
        var (newer, _) = await store.RaiseAlertAsync(new NewAlert("k", "info", null, "b/" + Guid.NewGuid(), "d", T0));

        var listed = await store.ListAlertsAsync(openOnly: true, limit: 2);

        Assert.Equal([newer.Id, older.Id], listed.Select(a => a.Id));
    }

    [Fact]
    public async Task A_webhook_counts_its_deliveries_and_reports_processed_only_after_it_was_marked()
    {
        var store = await CreateStoreAsync();
        var eventId = "evt_" + Guid.NewGuid().ToString("N");

        var first = await store.RecordWebhookAsync("stripe", eventId, "payment_intent.succeeded", T0);
        var second = await store.RecordWebhookAsync("stripe", eventId, "payment_intent.succeeded", T0.AddSeconds(5));
        await store.MarkWebhookProcessedAsync("stripe", eventId, "captured", T0.AddSeconds(6));
        await store.MarkWebhookProcessedAsync("stripe", eventId, "again", T0.AddSeconds(7));
        var third = await store.RecordWebhookAsync("stripe", eventId, "payment_intent.succeeded", T0.AddSeconds(8));
        var otherProvider = await store.RecordWebhookAsync("postmark", eventId, "inbound", T0);

        Assert.Equal(new WebhookReceipt(false, 1), first);
        Assert.Equal(new WebhookReceipt(false, 2), second);
        Assert.Equal(new WebhookReceipt(true, 3), third);
        Assert.Equal(new WebhookReceipt(false, 1), otherProvider);
    }

    [Fact]
    public async Task A_webhook_recorded_as_processed_is_found_processed_and_the_first_processing_wins()
    {
        var store = await CreateStoreAsync();
        var fresh = "evt_" + Guid.NewGuid().ToString("N");
        var seen = "evt_" + Guid.NewGuid().ToString("N");
        await store.RecordWebhookAsync("stripe", seen, "charge.refunded", T0);

        Assert.False(await store.IsWebhookProcessedAsync("stripe", seen));
        await store.RecordProcessedWebhookAsync("stripe", fresh, "payment_intent.succeeded", T0, "captured", T0.AddSeconds(1));
        await store.RecordProcessedWebhookAsync("stripe", seen, "charge.refunded", T0.AddSeconds(2), "refunded", T0.AddSeconds(3));
        await store.RecordProcessedWebhookAsync("stripe", seen, "charge.refunded", T0.AddSeconds(4), "again", T0.AddSeconds(5));

        Assert.True(await store.IsWebhookProcessedAsync("stripe", fresh));
        Assert.True(await store.IsWebhookProcessedAsync("stripe", seen));
        Assert.False(await store.IsWebhookProcessedAsync("postmark", fresh));
        Assert.Equal(new WebhookReceipt(true, 2), await store.RecordWebhookAsync("stripe", fresh, "payment_intent.succeeded", T0.AddSeconds(6)));
        Assert.Equal(new WebhookReceipt(true, 2), await store.RecordWebhookAsync("stripe", seen, "charge.refunded", T0.AddSeconds(6)));
    }

    [Fact]
    public async Task Every_email_attempt_is_logged_in_time_order()
    {
        var store = await CreateStoreAsync();
        var escrowId = Guid.NewGuid();
        var failed = new EmailLogEntry(escrowId, "reply_request", "a@example.com", "Reply", "failed", null, "timeout", T0);
        var sent = failed with { Outcome = "sent", ProviderMessageId = "pm-1", Error = null, At = T0.AddMinutes(1) };

        await store.LogEmailAsync(sent);
        await store.LogEmailAsync(failed);
        await store.LogEmailAsync(failed with { EscrowId = null });

        Assert.Equal([failed, sent], await store.GetEmailLogAsync(escrowId));
    }

    [Fact]
    public async Task An_inbound_message_is_recorded_once_by_provider_message_id()
    {
        var store = await CreateStoreAsync();
        var escrowId = Guid.NewGuid();
        var message = new InboundMessageRecord("msg-" + Guid.NewGuid(), escrowId, "b@example.com", "Re: question", T0, true, false, null, "Thanks…");

        await store.RecordInboundMessageAsync(message);
        await store.RecordInboundMessageAsync(message with { Preview = "changed", IgnoredReason = "duplicate" });

        Assert.Equal([message], await store.GetInboundMessagesAsync(escrowId));
        Assert.Empty(await store.GetInboundMessagesAsync(Guid.NewGuid()));
    }

    [Fact]
    public async Task The_audit_trail_is_listed_newest_first_and_filters_by_escrow()
    {
        var store = await CreateStoreAsync();
        var escrowId = Guid.NewGuid();
        await store.WriteAuditAsync(new AuditEntry(0, "key-1", "refund", escrowId, "customer asked", T0, null));
        await store.WriteAuditAsync(new AuditEntry(0, "key-2", "breaker_reset", null, null, T0.AddMinutes(1), """{"window":10}"""));
        await store.WriteAuditAsync(new AuditEntry(0, "key-1", "release", escrowId, null, T0.AddMinutes(2), null));

        var forEscrow = await store.GetAuditAsync(escrowId, limit: 10);
        var latest = await store.GetAuditAsync(null, limit: 1);

        Assert.Equal(["release", "refund"], forEscrow.Select(a => a.Action));
        Assert.True(forEscrow[0].Id > forEscrow[1].Id);
        Assert.Equal(new AuditEntry(forEscrow[1].Id, "key-1", "refund", escrowId, "customer asked", T0, null), forEscrow[1]);
        Assert.Single(latest);
        Assert.True(latest[0].Id >= forEscrow[0].Id);
    }

    [Fact]
    public async Task The_store_answers_a_ping()
    {
        var store = await CreateStoreAsync();

        Assert.True(await store.PingAsync());
    }
}

public sealed class InMemoryEscrowStoreContractTests : EscrowStoreContractTests
{
    protected override Task<IEscrowStore> CreateStoreAsync() =>
        Task.FromResult<IEscrowStore>(new InMemoryEscrowStore(new FakeTimeProvider(T0)));
}

public sealed class PostgresEscrowStoreContractTests : EscrowStoreContractTests, IAsyncLifetime
{
    private NpgsqlDataSource? _dataSource;

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.GetAsync();
        _dataSource = NpgsqlDataSource.Create(await server.CreateDatabaseAsync("store"));
    }

    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }

    private NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("InitializeAsync has not run.");

    protected override Task<IEscrowStore> CreateStoreAsync() => Task.FromResult<IEscrowStore>(new PostgresEscrowStore(DataSource));

    [Fact]
    public async Task Ledger_rows_cannot_be_updated_deleted_or_truncated()
    {
        var store = await CreateStoreAsync();
        var p = AProjection();
        await store.SyncEscrowAsync(p, [AnEntry(p.EscrowId, 1)]);

        foreach (var sql in (string[])[
            "UPDATE escrow_ledger SET amount_minor = 1 WHERE escrow_id = @id",
            "DELETE FROM escrow_ledger WHERE escrow_id = @id",
            "TRUNCATE escrow_ledger"])
        {
            await using var command = DataSource.CreateCommand(sql);
            command.Parameters.AddWithValue("id", p.EscrowId);
            var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
            Assert.Contains("insert-only", e.MessageText, StringComparison.Ordinal);
        }
        Assert.Equal([AnEntry(p.EscrowId, 1)], await store.GetLedgerAsync(p.EscrowId));
    }

    // The outcome, the event type and the times are not readable through IEscrowStore, so this reads the rows.
    [Fact]
    public async Task The_webhook_inbox_keeps_each_value_in_its_column_and_the_first_outcome()
    {
        var store = await CreateStoreAsync();
        var processed = "evt_" + Guid.NewGuid().ToString("N");
        var marked = "evt_" + Guid.NewGuid().ToString("N");

        await store.RecordProcessedWebhookAsync("stripe", processed, "charge.refunded", T0, "refunded", T0.AddSeconds(1));
        await store.RecordProcessedWebhookAsync("stripe", processed, "charge.refunded", T0.AddSeconds(2), "again", T0.AddSeconds(3));
        await store.RecordWebhookAsync("stripe", marked, "payment_intent.succeeded", T0.AddSeconds(4));
        await store.MarkWebhookProcessedAsync("stripe", marked, "captured", T0.AddSeconds(5));
        await store.MarkWebhookProcessedAsync("stripe", marked, "again", T0.AddSeconds(6));

        Assert.Equal(("charge.refunded", T0, 1, T0.AddSeconds(1), "refunded"), await ReadWebhookRowAsync("stripe", processed));
        Assert.Equal(("payment_intent.succeeded", T0.AddSeconds(4), 1, T0.AddSeconds(5), "captured"), await ReadWebhookRowAsync("stripe", marked));
    }

    private async Task<(string EventType, DateTimeOffset ReceivedAt, int Attempts, DateTimeOffset ProcessedAt, string Outcome)> ReadWebhookRowAsync(
        string provider, string eventId)
    {
        await using var command = DataSource.CreateCommand("""
            SELECT event_type, received_at, attempts, processed_at, outcome FROM webhook_inbox WHERE provider = @provider AND event_id = @event_id
            """);
        command.Parameters.AddWithValue("provider", provider);
        command.Parameters.AddWithValue("event_id", eventId);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetInt32(2), reader.GetFieldValue<DateTimeOffset>(3),
            reader.GetString(4));
    }

    [Fact]
    public async Task The_database_rejects_a_status_that_is_not_a_wire_name()
    {
        await using var command = DataSource.CreateCommand("""
            INSERT INTO escrow_ledger (escrow_id, seq, kind, status, at) VALUES (@id, 0, 'created', 'lost', now())
            """);
        command.Parameters.AddWithValue("id", Guid.NewGuid());

        var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.CheckViolation, e.SqlState);
    }
}
