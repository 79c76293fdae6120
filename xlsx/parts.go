package xlsx

import (
	"strconv"
	"time"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

const relsXML = xmlHeader + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
	`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
	`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>` +
	`<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>` +
	`</Relationships>`

// appendAttr appends s escaped for an XML attribute or element.
func appendAttr(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '"':
			b = append(b, "&quot;"...)
		case r == '\'':
			b = append(b, "&apos;"...)
		case r == '\t' || r == '\n' || r == '\r':
			b = append(b, "&#"...)
			b = strconv.AppendInt(b, int64(r), 10)
			b = append(b, ';')
		case !xmlChar(r):
			// removed
		default:
			b = append(b, string(r)...)
		}
	}
	return b
}

func (w *Writer) workbookXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`...)
	b = append(b, `<bookViews><workbookView activeTab="0"/></bookViews><sheets>`...)
	for i, s := range w.sheets {
		b = append(b, `<sheet name="`...)
		b = appendAttr(b, s.name)
		b = append(b, `" sheetId="`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `" r:id="rId`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `"/>`...)
	}
	b = append(b, `</sheets>`...)
	defined := false
	for i, s := range w.sheets {
		if !s.filtered {
			continue
		}
		if !defined {
			b = append(b, `<definedNames>`...)
			defined = true
		}
		b = append(b, `<definedName name="_xlnm._FilterDatabase" localSheetId="`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `" hidden="1">`...)
		b = appendAttr(b, quoteSheet(s.name))
		b = append(b, `!$A$1:$`...)
		b = append(b, columnName(s.nCols-1)...)
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(max(s.lastRow, 1)), 10)
		b = append(b, `</definedName>`...)
	}
	if defined {
		b = append(b, `</definedNames>`...)
	}
	return append(b, `</workbook>`...)
}

// quoteSheet quotes a sheet name for a formula: 'It”s'.
func quoteSheet(name string) string {
	q := []byte{'\''}
	for i := 0; i < len(name); i++ {
		if name[i] == '\'' {
			q = append(q, '\'')
		}
		q = append(q, name[i])
	}
	return string(append(q, '\''))
}

func (w *Writer) workbookRelsXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`...)
	for i, s := range w.sheets {
		b = append(b, `<Relationship Id="rId`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet`...)
		b = strconv.AppendInt(b, int64(s.part), 10)
		b = append(b, `.xml"/>`...)
	}
	b = append(b, `<Relationship Id="rId`...)
	b = strconv.AppendInt(b, int64(len(w.sheets)+1), 10)
	b = append(b, `" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>`...)
	return append(b, `</Relationships>`...)
}

func (w *Writer) stylesXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`...)
	if len(w.numFmts) > 0 {
		b = append(b, `<numFmts count="`...)
		b = strconv.AppendInt(b, int64(len(w.numFmts)), 10)
		b = append(b, `">`...)
		for i, f := range w.numFmts {
			b = append(b, `<numFmt numFmtId="`...)
			b = strconv.AppendInt(b, int64(164+i), 10)
			b = append(b, `" formatCode="`...)
			b = appendAttr(b, f)
			b = append(b, `"/>`...)
		}
		b = append(b, `</numFmts>`...)
	}
	b = append(b, `<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font><font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>`+
		`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>`+
		`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>`+
		`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>`+
		`<cellXfs count="`...)
	b = strconv.AppendInt(b, int64(2+len(w.numFmts)), 10)
	b = append(b, `"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>`+
		`<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>`...)
	for i := range w.numFmts {
		b = append(b, `<xf numFmtId="`...)
		b = strconv.AppendInt(b, int64(164+i), 10)
		b = append(b, `" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>`...)
	}
	b = append(b, `</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>`...)
	return append(b, `</styleSheet>`...)
}

func appendElem(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendAttr(b, value)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

func (w *Writer) coreXML(b []byte) []byte {
	p := &w.Properties
	b = append(b, xmlHeader...)
	b = append(b, `<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`...)
	b = appendElem(b, "dc:title", p.Title)
	b = appendElem(b, "dc:subject", p.Subject)
	b = appendElem(b, "dc:creator", p.Creator)
	b = appendElem(b, "cp:keywords", p.Keywords)
	b = appendElem(b, "dc:description", p.Description)
	b = appendElem(b, "cp:category", p.Category)
	created := p.Created.UTC().Truncate(time.Second)
	for _, tag := range []string{"dcterms:created", "dcterms:modified"} {
		b = append(b, '<')
		b = append(b, tag...)
		b = append(b, ` xsi:type="dcterms:W3CDTF">`...)
		b = created.AppendFormat(b, "2006-01-02T15:04:05Z")
		b = append(b, "</"...)
		b = append(b, tag...)
		b = append(b, '>')
	}
	return append(b, `</cp:coreProperties>`...)
}

func (w *Writer) appXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, `<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>exportd</Application>`...)
	b = appendElem(b, "Company", w.Properties.Company)
	return append(b, `</Properties>`...)
}

func (w *Writer) contentTypesXML(b []byte) []byte {
	b = append(b, xmlHeader...)
	b = append(b, `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">`+
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>`+
		`<Default Extension="xml" ContentType="application/xml"/>`+
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>`...)
	for _, s := range w.sheets {
		b = append(b, `<Override PartName="/xl/worksheets/sheet`...)
		b = strconv.AppendInt(b, int64(s.part), 10)
		b = append(b, `.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`...)
	}
	b = append(b, `<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`+
		`<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>`+
		`<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>`+
		`</Types>`...)
	return b
}
