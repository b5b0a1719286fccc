using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Escrow.Api.Endpoints;

/// <summary>Reads a JSON body by hand so that every malformed body gets a 400 problem detail that says what is wrong.</summary>
public static class JsonBody
{
    public const int BodyBytesMax = 256 * 1024;

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web) { MaxDepth = 16 };

    public static async Task<(T? Body, ProblemHttpResult? Error)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, Problems.Make(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json."));
        }
        if (request.ContentLength > BodyBytesMax)
        {
            return (null, Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body may be at most {BodyBytesMax} bytes."));
        }
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            if (buffer.Length > BodyBytesMax)
            {
                return (null, Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body may be at most {BodyBytesMax} bytes."));
            }
            var body = JsonSerializer.Deserialize<T>(buffer.ToArray(), Web);
            return body is null ? (null, Problems.BadRequest("The body must be a JSON object.")) : (body, null);
        }
        catch (JsonException e)
        {
            return (null, Problems.BadRequest($"The body is not valid JSON for this request: {e.Message}"));
        }
    }
}
