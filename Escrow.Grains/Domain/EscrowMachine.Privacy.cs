namespace Escrow.Grains.Domain;

/// <summary>Erasing personal data: only a finished escrow, whose texts nothing needs any more.</summary>
public sealed partial class EscrowMachine
{
    private static Decision Erase(EscrowState s, ErasePersonalData e, DateTimeOffset now)
    {
        // An e-mail still to send (a refund notice, a forwarded reply) needs the address and the texts.
        if (!s.IsTerminal || s.Outbox.Any(x => x.Kind == EffectKind.SendEmail))
        {
            return Decision.Reject(s, Rejection.EscrowOpen);
        }
        var done = e.BodiesOnly ? s.BodiesErasedAt is not null : s.PersonalDataErasedAt is not null;
        if (done)
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        var erased = s.WithoutClearTokens() with
        {
            Subject = EscrowState.Erased,
            Message = EscrowState.Erased,
            BodiesErasedAt = s.BodiesErasedAt ?? now,
            Outbox = [.. s.Outbox.Select(x => x.Payload is null ? x : x with { Payload = EscrowState.Erased })],
        };
        if (!e.BodiesOnly)
        {
            erased = erased with { SenderEmail = EscrowState.Erased, PersonalDataErasedAt = now };
        }
        return Decision.Accept(Record(erased, now, e.BodiesOnly ? "message_bodies_erased" : "personal_data_erased"));
    }
}
