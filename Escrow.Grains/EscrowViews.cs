namespace Escrow.Grains;

/// <summary>Maps the persisted state to what callers see: the API view, the queryable projection and the ledger rows.</summary>
public static class EscrowViews
{
    public static EscrowView From(EscrowState s) => new(
        s.Id, s.Status.ToWire(), s.RecipientId, s.Amount.Minor, s.Amount.Currency.Code,
        s.Split.RecipientShare.Minor, s.Split.PlatformFee.Minor, s.ResponseWindow, s.CreatedAt, s.Deadline, s.ReplyDeadline,
        s.PaymentIntentId, s.ClientSecret, "", s.TransferId,
        [.. s.History.Select(h => new EscrowHistoryItem(h.Status.ToWire(), h.At, h.Event, h.AmountMinor, h.Detail))],
        s.ChargeId, s.DisputeOpen, s.NeedsOperator, s.TransferFailures, s.NextTransferAttemptAt, s.RefundAwaitingApproval,
        s.SenderEmail, s.Outbox.Length, s.LastPaymentError, s.DisputeId, s.DisputeStatus?.ToString().ToLowerInvariant(), s.ShareReversed,
        s.AccessTokenDigest);

    public static EscrowProjection Projection(EscrowState s) => new(
        s.Id, s.RecipientId, s.Status.ToWire(), s.Amount.Minor, s.Amount.Currency.Code,
        s.Split.RecipientShare.Minor, s.Split.PlatformFee.Minor, s.PaymentIntentId, s.ChargeId, s.TransferId,
        s.CreatedAt, s.Deadline, s.ReplyDeadline, s.StatusChangedAt, s.TransferFailures, s.DisputeOpen, s.History.Length,
        s.PersonalDataErasedAt is null && s.SenderEmail.Length > 0 ? PersonalData.SenderKey(s.SenderEmail) : null, s.BodiesErasedAt is not null,
        EffectAge.WaitingSince(s), EffectAge.Seq(s), EffectAge.TransferRetriesExhausted(s));

    /// <summary>The history entries after <paramref name="afterSeq"/> as insert-only ledger rows.</summary>
    public static IReadOnlyList<LedgerEntry> Ledger(EscrowState s, int afterSeq) =>
        s.History.Where(h => h.Seq > afterSeq).Select(h => new LedgerEntry(
            s.Id, h.Seq, h.Event, h.Status.ToWire(), h.AmountMinor, h.AmountMinor is null ? null : s.Amount.Currency.Code, h.At,
            h.Detail is null ? null : JsonSerializer.Serialize(new Dictionary<string, string> { ["detail"] = h.Detail }))).ToList();
}
