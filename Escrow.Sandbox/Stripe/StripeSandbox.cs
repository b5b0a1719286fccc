using System.Security.Cryptography;
using System.Threading.Channels;

namespace Escrow.Sandbox;

/// <summary>
/// The in-memory state of the Stripe emulator. Thread-safe: every operation runs under one lock.
/// Tests read snapshots from it; the endpoints in <see cref="StripeSandboxEndpoints"/> drive it.
/// </summary>
public sealed partial class StripeSandbox
{
    private static readonly string[] CancellableStatuses =
        ["requires_payment_method", "requires_confirmation", "requires_action", "requires_capture", "processing"];

    private static readonly string[] CancellationReasons =
        ["duplicate", "fraudulent", "requested_by_customer", "abandoned"];

    private readonly Lock _gate = new();
    private readonly SandboxOptions _options;
    private readonly TimeProvider _time;
    private readonly PersistentMap<SandboxPaymentIntent> _paymentIntents;
    private readonly PersistentMap<SandboxCharge> _charges;
    private readonly PersistentMap<SandboxTransfer> _transfers;
    // Amount transferred so far from each source charge: a transfer's check without a scan of every transfer.
    private readonly Dictionary<string, long> _transferredFromCharge = new(StringComparer.Ordinal);
    private readonly PersistentMap<SandboxRefund> _refunds;
    private readonly PersistentMap<SandboxTransferReversal> _transferReversals;
    private readonly PersistentMap<SandboxDispute> _disputes;
    private readonly PersistentMap<SandboxAccount> _accounts;
    private readonly PersistentMap<SandboxEvent> _events;
    private readonly PersistentMap<SandboxAccountLink> _accountLinks;
    private readonly PersistentMap<StoredResponse> _idempotency;
    // Events not yet delivered to the webhook: after a restart their delivery starts again, as Stripe's retries go on.
    private readonly PersistentMap<string> _undelivered;
    private readonly SandboxJournal? _journal;
    private readonly Dictionary<string, List<Fault>> _faults = new(StringComparer.Ordinal);
    private readonly List<SandboxRequest> _requests = [];
    private readonly List<SandboxWebhookAttempt> _attempts = [];
    private readonly Channel<WebhookDelivery> _deliveries = Channel.CreateUnbounded<WebhookDelivery>(
        new UnboundedChannelOptions { SingleReader = false });

    internal StripeSandbox(IOptions<SandboxOptions> options, TimeProvider time, SandboxJournal? journal = null)
    {
        _options = options.Value;
        _time = time;
        _journal = journal;
        _paymentIntents = new("stripe.payment_intent", journal);
        _charges = new("stripe.charge", journal);
        _transfers = new("stripe.transfer", journal);
        _refunds = new("stripe.refund", journal);
        _transferReversals = new("stripe.transfer_reversal", journal);
        _disputes = new("stripe.dispute", journal);
        _accounts = new("stripe.account", journal);
        _events = new("stripe.event", journal);
        _accountLinks = new("stripe.account_link", journal);
        _idempotency = new("stripe.idempotency_key", journal);
        _undelivered = new("stripe.undelivered_event", journal);
        _webhookEndpoints = new("stripe.webhook_endpoint", journal);
        Load();
    }

    /// <summary>The stored objects of a journal (a restart on the same database); nothing without one.</summary>
    private void Load()
    {
        if (_journal is null)
        {
            return;
        }

        foreach (var map in new Action[]
        {
            _paymentIntents.Load, _charges.Load, _transfers.Load, _refunds.Load, _accounts.Load, _events.Load,
            _accountLinks.Load, _idempotency.Load, _undelivered.Load, _webhookEndpoints.Load, _transferReversals.Load, _disputes.Load,
        })
        {
            map();
        }

        // Held authorisations still expire 7 days after they were made, restart or not.
        foreach (var pi in _paymentIntents.Values.Where(pi => pi.Status == "requires_capture"))
        {
            ScheduleAuthorisationExpiry(pi.Id, pi.LatestCharge is { } charge && _charges.TryGetValue(charge, out var c) ? c.Created : pi.Created);
        }

        foreach (var transfer in _transfers.Values.Where(t => t.SourceTransaction is not null))
        {
            _transferredFromCharge[transfer.SourceTransaction!] = _transferredFromCharge.GetValueOrDefault(transfer.SourceTransaction!) + transfer.Amount - transfer.AmountReversed;
        }

        foreach (var eventId in _undelivered.Keys)
        {
            _deliveries.Writer.TryWrite(new WebhookDelivery(eventId, 1));
        }
    }

    /// <summary>Completes when every change made so far is durable (at once without a journal).</summary>
    internal Task WhenDurableAsync() => _journal is null ? Task.CompletedTask : _journal.WhenDurableAsync(_journal.LastSeq);

    public IReadOnlyList<SandboxPaymentIntent> PaymentIntents => Snapshot(_paymentIntents);
    public IReadOnlyList<SandboxCharge> Charges => Snapshot(_charges);
    public IReadOnlyList<SandboxTransfer> Transfers => Snapshot(_transfers);
    public IReadOnlyList<SandboxRefund> Refunds => Snapshot(_refunds);
    public IReadOnlyList<SandboxTransferReversal> TransferReversals => Snapshot(_transferReversals);
    public IReadOnlyList<SandboxDispute> Disputes => Snapshot(_disputes);
    public IReadOnlyList<SandboxAccount> Accounts => Snapshot(_accounts);

    /// <summary>All events, oldest first.</summary>
    public IReadOnlyList<SandboxEvent> Events => Snapshot(_events);

    /// <summary>Every request the Stripe API endpoints answered, in order.</summary>
    public IReadOnlyList<SandboxRequest> Requests
    {
        get { lock (_gate) { return [.. _requests]; } }
    }

    /// <summary>Every webhook delivery attempt, in order.</summary>
    public IReadOnlyList<SandboxWebhookAttempt> WebhookAttempts
    {
        get { lock (_gate) { return [.. _attempts]; } }
    }

    public SandboxPaymentIntent? GetPaymentIntent(string id) => Find(_paymentIntents, id);
    public SandboxCharge? GetCharge(string id) => Find(_charges, id);
    public SandboxTransfer? GetTransfer(string id) => Find(_transfers, id);
    public SandboxRefund? GetRefund(string id) => Find(_refunds, id);
    public SandboxAccount? GetAccount(string id) => Find(_accounts, id);
    public SandboxEvent? GetEvent(string id) => Find(_events, id);

    /// <summary>Events of one type, oldest first.</summary>
    public IReadOnlyList<SandboxEvent> EventsOfType(string type)
    {
        lock (_gate)
        {
            return [.. _events.Values.Where(e => e.Type == type)];
        }
    }

    /// <summary>Forgets everything: objects, events, requests, idempotency keys, faults.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _paymentIntents.Clear();
            _charges.Clear();
            _transfers.Clear();
            _transferredFromCharge.Clear();
            _refunds.Clear();
            _transferReversals.Clear();
            _disputes.Clear();
            _accounts.Clear();
            _events.Clear();
            _accountLinks.Clear();
            _idempotency.Clear();
            _undelivered.Clear();
            _faults.Clear();
            _requests.Clear();
            _attempts.Clear();
            _webhookEndpoints.Clear();
            _authorisationExpiries.Clear();
            ResetStats();
        }
    }

    internal ChannelReader<WebhookDelivery> Deliveries => _deliveries.Reader;

    internal void EnqueueDelivery(WebhookDelivery delivery) => _deliveries.Writer.TryWrite(delivery);

    internal void RecordAttempt(SandboxWebhookAttempt attempt)
    {
        lock (_gate)
        {
            _attempts.Add(attempt);
            if (attempt.Succeeded)
            {
                _undelivered.Remove(attempt.EventId);
            }
        }
    }

    internal void RecordRequest(SandboxRequest request)
    {
        lock (_gate)
        {
            _requests.Add(request);
        }
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeSeconds();

    internal static string NewId(string prefix) => $"{prefix}_{RandomToken(24)}";

    private static string RandomToken(int length)
    {
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        return RandomNumberGenerator.GetString(alphabet, length);
    }

    private IReadOnlyList<T> Snapshot<T>(PersistentMap<T> map)
        where T : notnull
    {
        lock (_gate)
        {
            return [.. map.Values];
        }
    }

    private T? Find<T>(PersistentMap<T> map, string id)
        where T : class
    {
        lock (_gate)
        {
            return map.GetValueOrDefault(id);
        }
    }

    private sealed record StoredResponse(string Fingerprint, int Status, string Body);

    private sealed class Fault(SandboxFaultKind kind, int remaining)
    {
        public SandboxFaultKind Kind { get; } = kind;
        public int Remaining { get; set; } = remaining;
    }
}

internal sealed record WebhookDelivery(string EventId, int Attempt);
