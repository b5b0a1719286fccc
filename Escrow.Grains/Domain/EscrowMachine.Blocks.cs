namespace Escrow.Grains.Domain;

// The building blocks every decision uses: effects in the outbox, transitions, history entries.
public sealed partial class EscrowMachine
{
    private static Decision CompleteEffect(EscrowState s, int effectId, EffectKind? kind = null) =>
        HasEffect(s, effectId, kind) ? Decision.Accept(RemoveEffect(s, effectId)) : Decision.Reject(s, Rejection.UnknownEffect);

    // Building blocks. Each returns a new state; none performs anything.

    /// <summary>A result completes only the pending effect it names, and only an effect of the kind that produces it.</summary>
    private static bool HasEffect(EscrowState s, int effectId, EffectKind? kind = null) =>
        s.Outbox.Any(e => e.Id == effectId && (kind is null || e.Kind == kind));

    internal static EscrowState AddEffect(
        EscrowState s, EffectKind kind, EmailKind? email = null, string? detail = null, string? payload = null, int keyAttempt = 0,
        AlertKind? alert = null, string? alertKey = null)
    {
        if (s.Outbox.Length >= EscrowState.OutboxEffectsMax)
        {
            throw new EscrowInvariantException(s.Id, $"the outbox is full ({EscrowState.OutboxEffectsMax} effects)");
        }
        var effect = new PendingEffect(s.NextEffectId, kind, email, detail, Payload: payload, KeyAttempt: keyAttempt, Alert: alert,
            AlertKey: alertKey);
        return s with { Outbox = s.Outbox.Add(effect), NextEffectId = s.NextEffectId + 1 };
    }

    private static EscrowState Email(EscrowState s, EmailKind kind, string? payload = null) =>
        AddEffect(s, EffectKind.SendEmail, kind, payload: payload);

    private static EscrowState Alert(EscrowState s, AlertKind kind, string detail) =>
        AddEffect(s, EffectKind.RaiseAlert, detail: detail, alert: kind);

    private static EscrowState RemoveEffect(EscrowState s, int effectId) =>
        s with { Outbox = s.Outbox.RemoveAll(e => e.Id == effectId) };

    private static EscrowState RemoveEffects(EscrowState s, params EffectKind[] kinds) =>
        s with { Outbox = s.Outbox.RemoveAll(e => kinds.Contains(e.Kind)) };

    /// <remarks>An escrow stored with clear tokens (before they were hashed) keeps only their hashes once it ends.</remarks>
    private static EscrowState Transition(EscrowState s, EscrowStatus status, DateTimeOffset now, string evt, long? amountMinor = null,
        string? detail = null) =>
        Record((status.IsTerminal() ? s.WithoutClearTokens() : s) with { Status = status, StatusChangedAt = now }, now, evt, amountMinor,
            detail);

    private static EscrowState Record(EscrowState s, DateTimeOffset now, string evt, long? amountMinor = null, string? detail = null)
    {
        if (s.History.Length >= EscrowState.HistoryEntriesMax)
        {
            throw new EscrowInvariantException(s.Id, $"the history is full ({EscrowState.HistoryEntriesMax} entries)");
        }
        var entry = new HistoryEntry(s.History.Length + 1, s.Status, now, evt, amountMinor, detail);
        return s with { History = s.History.Add(entry) };
    }
}
