using Escrow.Grains.Payments;

namespace Escrow.Grains;

/// <summary>
/// Checks a UTC day three ways: every released escrow has exactly one Stripe transfer in its transfer group with
/// the right amount and destination; every refunded escrow's payment is cancelled or refunded at Stripe; every
/// payment Stripe captured belongs to an escrow that expects it; the ledger and projection agree with the grains; no
/// one-time e-mail went twice, and no refunded escrow had the reply forwarded. Each finding is an alert and a line in
/// the stored report.
/// </summary>
[GrainType("reconciliation")]
public sealed partial class ReconciliationGrain(
    TimeProvider clock,
    IEscrowStore store,
    IPaymentGateway payments,
    IOptions<ReconciliationOptions> options,
    IOptions<MonitorOptions> monitor,
    ILogger<ReconciliationGrain> logger) : Grain, IReconciliationGrain, IRemindable
{
    private const string ReminderName = "daily";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string ToJson(ReconciliationReport report) => JsonSerializer.Serialize(report, Json);

    public async Task EnsureScheduledAsync()
    {
        var now = clock.GetUtcNow();
        var next = now.UtcDateTime.Date + options.Value.RunAtUtc;
        if (next <= now.UtcDateTime)
        {
            next = next.AddDays(1);
        }
        await this.RegisterOrUpdateReminder(ReminderName, next - now.UtcDateTime, TimeSpan.FromDays(1));
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        var yesterday = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime).AddDays(-1);
        await RunAsync(yesterday, "schedule");
    }

    public async Task<ReconciliationReport> RunAsync(DateOnly date, string triggeredBy)
    {
        var now = clock.GetUtcNow();
        var from = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        var to = from.AddDays(1);
        var limit = options.Value.EscrowsPerRunMax;
        var touched = await store.GetEscrowsTouchedAsync(from, to, limit);
        var findings = new List<ReconciliationFinding>();
        var issues = new List<ReconciliationIssue>();

        foreach (var escrow in touched)
        {
            await CheckEscrowAsync(escrow, findings);
        }
        var captured = await payments.ListCapturedPaymentIntentsAsync(from, to);
        foreach (var intent in captured)
        {
            await CheckCapturedAsync(intent, findings);
        }

        var created = touched.Where(e => e.CreatedAt >= from && e.CreatedAt < to).ToList();
        var counts = created.GroupBy(e => (e.Status, e.Currency))
            .Select(g => new ReconciliationCount(g.Key.Status, g.Key.Currency, g.LongCount(), g.Sum(e => e.AmountMinor)))
            .OrderBy(c => c.Status, StringComparer.Ordinal).ToImmutableArray();
        Issue(issues, "transfer_failed", touched.Count(e => e.Status == "transfer_failed"), "escrows whose transfer failed and waits for a retry");
        Issue(issues, "stale_processing", touched.Count(e => e.Status == "processing" && now - e.StatusChangedAt > TimeSpan.FromMinutes(5)), "escrows in processing for over 5 minutes");
        Issue(issues, "payment_failed", created.Count(e => e.Status == "payment_failed"), "authorisations that failed");
        var released = touched.Count(e => e.Status == "released" && e.StatusChangedAt >= from && e.StatusChangedAt < to);
        var refunded = touched.Count(e => e.Status == "refunded" && e.StatusChangedAt >= from && e.StatusChangedAt < to);
        if (released + refunded > 0 && (double)refunded / (released + refunded) > options.Value.RefundRateIssueAbove)
        {
            Issue(issues, "refund_rate", refunded, $"{refunded} of {released + refunded} finished escrows were refunded (over {options.Value.RefundRateIssueAbove:P0})");
        }
        var stuck = await store.QueryEscrowsAsync(new EscrowQuery(StuckOnly: true, Now: now, Rules: monitor.Value.Rules(), Limit: 500));
        Issue(issues, "stuck", stuck.Items.Count, "escrows stuck now (GET /v1/admin/escrows?stuck=true)");
        if (touched.Count >= limit)
        {
            Issue(issues, "truncated", touched.Count, $"only the first {limit} escrows of the day were checked (Reconciliation:EscrowsPerRunMax)");
        }

        var report = new ReconciliationReport(date, now, triggeredBy, counts, [.. issues], [.. findings], touched.Count, captured.Count);
        await store.SaveReconciliationReportAsync(date, ToJson(report));
        foreach (var finding in findings)
        {
            await store.RaiseAlertAsync(new NewAlert(AlertKind.Reconciliation(finding.Kind), finding.EscrowId,
                $"reconciliation/{date:yyyy-MM-dd}/{finding.Kind}/{finding.EscrowId}", finding.Detail, now));
        }
        LogReconciled(date, touched.Count, captured.Count, findings.Count);
        return report;
    }

    private async Task CheckEscrowAsync(EscrowProjection escrow, List<ReconciliationFinding> findings)
    {
        var view = await GrainFactory.GetGrain<IEscrowGrain>(escrow.EscrowId).GetAsync();
        if (view is null)
        {
            findings.Add(new("missing_grain_state", escrow.EscrowId, "The projection has an escrow whose grain state does not exist."));
            return;
        }
        var ledger = await store.GetLedgerAsync(escrow.EscrowId);
        if (ledger.Count != view.History.Length || (ledger.Count > 0 && ledger[^1].Status != view.Status))
        {
            findings.Add(new("ledger_mismatch", escrow.EscrowId,
                $"The ledger has {ledger.Count} rows ending in '{(ledger.Count > 0 ? ledger[^1].Status : "nothing")}'; the escrow has {view.History.Length} history entries and is '{view.Status}'."));
        }
        if (escrow.Status != view.Status)
        {
            findings.Add(new("projection_mismatch", escrow.EscrowId, $"The projection says '{escrow.Status}'; the escrow is '{view.Status}'."));
        }
        if (view.Status == "released")
        {
            // A transfer taken back in full (a dispute's reversal) pays nothing; after a dispute lost, none is left.
            var transfers = (await payments.FindTransfersAsync(escrow.EscrowId)).Where(t => !t.Reversed).ToList();
            var recipient = await GrainFactory.GetGrain<IRecipientGrain>(view.RecipientId).GetAsync();
            var expected = view.DisputeStatus == "lost" && view.ShareReversed ? 0 : 1;
            if (transfers.Count != expected)
            {
                findings.Add(new("transfer_count", escrow.EscrowId, $"{transfers.Count} transfers in transfer group {escrow.EscrowId}: {string.Join(", ", transfers.Select(t => t.Id))}; {(expected == 1 ? "exactly one was" : "none was")} expected."));
            }
            foreach (var transfer in transfers)
            {
                if (transfer.AmountMinor != view.RecipientShareMinor || !string.Equals(transfer.Currency, view.Currency, StringComparison.OrdinalIgnoreCase))
                {
                    findings.Add(new("transfer_amount", escrow.EscrowId, $"Transfer {transfer.Id} is {transfer.AmountMinor} {transfer.Currency}; the share is {view.RecipientShareMinor} {view.Currency}."));
                }
                if (recipient?.StripeAccountId is { } account && transfer.DestinationAccountId != account)
                {
                    findings.Add(new("transfer_destination", escrow.EscrowId, $"Transfer {transfer.Id} went to {transfer.DestinationAccountId}; the recipient's account is {account}."));
                }
            }
            if (transfers.Count == 1 && transfers[0].Id != view.TransferId)
            {
                findings.Add(new("transfer_id", escrow.EscrowId, $"Stripe has transfer {transfers[0].Id}; the escrow recorded {view.TransferId}."));
            }
        }
        await CheckEmailsAsync(view, findings);
        if (view.Status == "refunded" && view.PaymentIntentId is { } paymentIntentId)
        {
            var intent = await payments.GetPaymentIntentAsync(paymentIntentId);
            var refundedAfterCapture = view.History.Any(h => h.Event == "payment_refunded");
            if (intent.Status != "canceled" && !(refundedAfterCapture && intent.Status == "succeeded"))
            {
                findings.Add(new("refund_not_at_stripe", escrow.EscrowId, $"The escrow is refunded but payment intent {paymentIntentId} is '{intent.Status}' at Stripe."));
            }
        }
    }

    /// <summary>
    /// The e-mail log of one escrow: a one-time e-mail sent twice (a re-drive that Postmark's search could not rule
    /// out), and a refunded escrow whose sender was sent the recipient's reply (the reply was lost after it went out).
    /// </summary>
    private async Task CheckEmailsAsync(EscrowView view, List<ReconciliationFinding> findings)
    {
        var sent = (await store.GetEmailLogAsync(view.Id)).Where(l => l.Outcome == "sent").ToList();
        foreach (var kind in sent.GroupBy(l => l.Kind, StringComparer.Ordinal).Where(g => g.Key is not ("pending-payout-setup" or Email.PayoutReminderMail.Tag) && g.Count() > 1))
        {
            findings.Add(new("email_sent_twice", view.Id, $"The '{kind.Key}' e-mail was sent {kind.Count()} times for this escrow."));
        }
        if (view.Status == "refunded" && sent.Any(l => l.Kind == "reply-forwarded"))
        {
            findings.Add(new("refunded_after_reply_forwarded", view.Id,
                "The escrow was refunded although the recipient's reply was forwarded to the sender: the reply was answered, then lost. Check the reply and release by hand if it was on time."));
        }
    }

    private async Task CheckCapturedAsync(PaymentIntentInfo intent, List<ReconciliationFinding> findings)
    {
        if (intent.EscrowId is not { } escrowId)
        {
            findings.Add(new("capture_without_escrow", null, $"Payment intent {intent.Id} was captured ({intent.AmountMinor} {intent.Currency}) and names no escrow."));
            return;
        }
        var view = await GrainFactory.GetGrain<IEscrowGrain>(escrowId).GetAsync();
        var expectsCapture = view is not null && view.ChargeId is not null && view.PaymentIntentId == intent.Id;
        if (!expectsCapture)
        {
            findings.Add(new("capture_without_escrow", escrowId,
                $"Payment intent {intent.Id} was captured ({intent.AmountMinor} {intent.Currency}) but escrow {escrowId} {(view is null ? "does not exist" : $"is '{view.Status}' with no capture recorded")}."));
        }
        else if (intent.AmountMinor != view!.AmountMinor)
        {
            findings.Add(new("capture_amount", escrowId, $"Payment intent {intent.Id} is {intent.AmountMinor}; the escrow is {view.AmountMinor}."));
        }
    }

    private static void Issue(List<ReconciliationIssue> issues, string kind, long count, string detail)
    {
        if (count > 0)
        {
            issues.Add(new ReconciliationIssue(kind, count, detail));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Reconciled {Date}: {Escrows} escrows, {Captured} captured payments, {Findings} findings")]
    private partial void LogReconciled(DateOnly date, int escrows, int captured, int findings);
}
